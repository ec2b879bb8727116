#include "engine/runtime/cpu_attention.h"

// GCC 12 warns inside its own AVX-512 headers ("'__Y' may be used uninitialized": the
// _mm512_undefined_* idiom they use), wherever their intrinsics are inlined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "engine/runtime/cpu_vector_math.h"

namespace engine {
namespace {

#define ENGINE_AVX512_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")))

constexpr int64_t kPanel = 16;     // keys (QKᵀ) or head dimensions (PV) per 512-bit vector
constexpr int64_t kQueryRows = 8;  // query rows per block

// The per-thread scratch of one (sequence, head): packed keys and values, a block of query rows,
// its scores and probabilities.
struct Scratch {
  std::vector<uint16_t> keys;           // [panels][dim/2][16][2]: QKᵀ's B operand in VNNI pairs
  std::vector<uint16_t> values;         // [keys/2][dim][2]: PV's B operand in VNNI pairs
  std::vector<uint16_t> queries;        // [8][dim]
  std::vector<float> scores;            // [8][panels*16]
  std::vector<uint16_t> probabilities;  // [8][keys rounded up to even]
  std::vector<float> sums;              // [8]
};

ENGINE_AVX512_BF16 inline __m512 broadcast_pair(const uint16_t* pair) {
  int32_t bits;
  std::memcpy(&bits, pair, sizeof(bits));
  return _mm512_castsi512_ps(_mm512_set1_epi32(bits));
}

ENGINE_AVX512_BF16 inline __m512 dot_pairs(__m512 accumulator, __m512 a, __m512 b) {
  return _mm512_dpbf16_ps(accumulator, (__m512bh)a, (__m512bh)b);
}

// scores[8][panels*16] = queries[8][dim] · keysᵀ for `panel_count` (1 or 2) panels from `panel`.
template <int kPanels>
ENGINE_AVX512_BF16 void score_panels(const Scratch& s, int64_t dim, int64_t panel,
                                     int64_t row_stride, float* scores) {
  __m512 accumulators[kQueryRows][kPanels];
  for (auto& row : accumulators) {
    for (auto& accumulator : row) accumulator = _mm512_setzero_ps();
  }
  const uint16_t* keys = s.keys.data() + panel * dim * kPanel;
  for (int64_t pair = 0; pair < dim / 2; ++pair) {
    __m512 b[kPanels];
#pragma GCC unroll 2
    for (int p = 0; p < kPanels; ++p) {
      b[p] = _mm512_loadu_ps(keys + (p * dim / 2 + pair) * kPanel * 2);
    }
#pragma GCC unroll 8
    for (int r = 0; r < kQueryRows; ++r) {
      const __m512 a = broadcast_pair(s.queries.data() + r * dim + 2 * pair);
#pragma GCC unroll 2
      for (int p = 0; p < kPanels; ++p) accumulators[r][p] = dot_pairs(accumulators[r][p], a, b[p]);
    }
  }
  for (int r = 0; r < kQueryRows; ++r) {
    for (int p = 0; p < kPanels; ++p) {
      _mm512_storeu_ps(scores + r * row_stride + (panel + p) * kPanel, accumulators[r][p]);
    }
  }
}

// out[4][dims of the group] = probabilities[4 rows from `row`] · values, for `kPanels` (1-4)
// panels of 16 head dimensions from `first_dim`.
template <int kPanels>
ENGINE_AVX512_BF16 void weigh_values(const Scratch& s, int64_t dim, int64_t pairs, int64_t row,
                                     int64_t first_dim, float* out) {
  constexpr int kRows = 4;
  __m512 accumulators[kRows][kPanels];
  for (auto& r : accumulators) {
    for (auto& accumulator : r) accumulator = _mm512_setzero_ps();
  }
  const int64_t probability_stride = pairs * 2;
  for (int64_t pair = 0; pair < pairs; ++pair) {
    __m512 b[kPanels];
    const uint16_t* values = s.values.data() + (pair * dim + first_dim) * 2;
#pragma GCC unroll 4
    for (int p = 0; p < kPanels; ++p) b[p] = _mm512_loadu_ps(values + p * kPanel * 2);
#pragma GCC unroll 4
    for (int r = 0; r < kRows; ++r) {
      const __m512 a =
          broadcast_pair(s.probabilities.data() + (row + r) * probability_stride + 2 * pair);
#pragma GCC unroll 4
      for (int p = 0; p < kPanels; ++p) accumulators[r][p] = dot_pairs(accumulators[r][p], a, b[p]);
    }
  }
  for (int r = 0; r < kRows; ++r) {
    for (int p = 0; p < kPanels; ++p) {
      _mm512_storeu_ps(out + (row + r) * dim + first_dim + p * kPanel, accumulators[r][p]);
    }
  }
}

// Softmax of each row's first `keys` scores times `scale`, left unnormalised as bf16
// probabilities (zero past `keys`, up to the even row length); the row sums go to s.sums.
ENGINE_AVX512_BF16 void softmax_rows(Scratch& s, int64_t keys, int64_t score_stride,
                                     int64_t probability_stride, float scale) {
  const __m512 scale_vector = _mm512_set1_ps(scale);
  for (int64_t r = 0; r < kQueryRows; ++r) {
    const float* scores = s.scores.data() + r * score_stride;
    __m512 maximum = _mm512_set1_ps(-INFINITY);
    for (int64_t j = 0; j < keys; j += kPanel) {
      const __mmask16 lanes = static_cast<__mmask16>(
          keys - j >= kPanel ? 0xFFFF : (1u << static_cast<unsigned>(keys - j)) - 1);
      maximum =
          _mm512_mask_max_ps(maximum, lanes, maximum, _mm512_maskz_loadu_ps(lanes, scores + j));
    }
    const __m512 shift = _mm512_set1_ps(_mm512_reduce_max_ps(maximum) * scale);
    __m512 sum = _mm512_setzero_ps();
    uint16_t* probabilities = s.probabilities.data() + r * probability_stride;
    for (int64_t j = 0; j < probability_stride; j += kPanel) {
      const int64_t left = std::min<int64_t>(keys - j, kPanel);
      const __mmask16 lanes =
          static_cast<__mmask16>(left >= kPanel ? 0xFFFF
                                 : left <= 0    ? 0
                                                : (1u << static_cast<unsigned>(left)) - 1);
      const __m512 x =
          _mm512_fmsub_ps(_mm512_maskz_loadu_ps(lanes, scores + j), scale_vector, shift);
      const __m512 e = _mm512_maskz_mov_ps(lanes, exp16(x));
      sum = _mm512_add_ps(sum, e);
      const __m256i packed = (__m256i)_mm512_cvtneps_pbh(e);
      const int64_t store = std::min<int64_t>(probability_stride - j, kPanel);
      _mm256_mask_storeu_epi16(probabilities + j,
                               static_cast<__mmask16>(store >= kPanel ? 0xFFFF : (1u << store) - 1),
                               packed);
    }
    s.sums[r] = _mm512_reduce_add_ps(sum);
  }
}

// Rows of the fp32 output divided by their sums, as bf16, to `out` (a row stride apart).
ENGINE_AVX512_BF16 void store_rows(const Scratch& s, const float* weighted, int64_t rows,
                                   int64_t dim, at::BFloat16* out, int64_t out_row_stride) {
  for (int64_t r = 0; r < rows; ++r) {
    const __m512 inverse = _mm512_set1_ps(1.0f / s.sums[r]);
    for (int64_t d = 0; d < dim; d += kPanel) {
      const __m512 x = _mm512_mul_ps(_mm512_loadu_ps(weighted + r * dim + d), inverse);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + r * out_row_stride + d),
                          (__m256i)_mm512_cvtneps_pbh(x));
    }
  }
}

struct HeadView {
  const at::BFloat16* data;
  int64_t row_stride;
};

// Packs one head's first `keys` keys and values into the VNNI layouts above (zeros past them).
// Keys: a pair of head dimensions is one 32-bit word, and each panel is the transpose of 16 keys'
// words. Values: two keys' rows interleaved, 16 bits at a time.
ENGINE_AVX512_BF16 void pack_head(Scratch& s, const HeadView& key, const HeadView& value,
                                  int64_t keys, int64_t dim) {
  const int64_t panels = (keys + kPanel - 1) / kPanel;
  const int64_t words = dim / 2;
  s.keys.resize(static_cast<size_t>(panels * kPanel * dim));
  auto* packed_keys = reinterpret_cast<int32_t*>(s.keys.data());
  const __m512i row_offsets =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(static_cast<int32_t>(key.row_stride / 2)));
  for (int64_t panel = 0; panel < panels; ++panel) {
    const int64_t rows = std::min<int64_t>(kPanel, keys - panel * kPanel);
    const __mmask16 lanes =
        static_cast<__mmask16>(rows >= kPanel ? 0xFFFF : (1u << static_cast<unsigned>(rows)) - 1);
    const auto* words_of_row0 =
        reinterpret_cast<const int32_t*>(key.data + panel * kPanel * key.row_stride);
    int32_t* out = packed_keys + panel * kPanel * words;
    for (int64_t w = 0; w < words; ++w) {
      _mm512_storeu_si512(out + w * kPanel,
                          _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), lanes, row_offsets,
                                                      words_of_row0 + w, 4));
    }
  }
  const int64_t pairs = (keys + 1) / 2;
  s.values.resize(static_cast<size_t>(pairs * 2 * dim));
  // Lanes 0-15 of the result take a[d], b[d] in turns for the first 16 dimensions; then the next.
  alignas(64) uint16_t low_order[32], high_order[32];
  for (int i = 0; i < 16; ++i) {
    low_order[2 * i] = static_cast<uint16_t>(i);
    low_order[2 * i + 1] = static_cast<uint16_t>(32 + i);
    high_order[2 * i] = static_cast<uint16_t>(16 + i);
    high_order[2 * i + 1] = static_cast<uint16_t>(48 + i);
  }
  const __m512i low = _mm512_load_si512(low_order), high = _mm512_load_si512(high_order);
  for (int64_t pair = 0; pair < pairs; ++pair) {
    const at::BFloat16* first = value.data + 2 * pair * value.row_stride;
    const bool has_second = 2 * pair + 1 < keys;
    uint16_t* out = s.values.data() + pair * dim * 2;
    for (int64_t d = 0; d < dim; d += 2 * kPanel) {
      const __mmask32 lanes = static_cast<__mmask32>(
          dim - d >= 2 * kPanel ? 0xFFFFFFFFu : (1u << static_cast<unsigned>(dim - d)) - 1);
      const __m512i a = _mm512_maskz_loadu_epi16(lanes, first + d);
      const __m512i b = has_second ? _mm512_maskz_loadu_epi16(lanes, first + value.row_stride + d)
                                   : _mm512_setzero_si512();
      _mm512_storeu_si512(out + 2 * d, _mm512_permutex2var_epi16(a, low, b));
      if (dim - d > kPanel) {
        _mm512_storeu_si512(out + 2 * d + 2 * kPanel, _mm512_permutex2var_epi16(a, high, b));
      }
    }
  }
}

// One (sequence, head): its first `keys` query rows attend to its first `keys` keys.
ENGINE_AVX512_BF16 void attend_head(Scratch& s, const HeadView& query, const HeadView& key,
                                    const HeadView& value, int64_t keys, int64_t dim, float scale,
                                    at::BFloat16* out, int64_t out_row_stride) {
  pack_head(s, key, value, keys, dim);
  const int64_t panels = (keys + kPanel - 1) / kPanel;
  const int64_t score_stride = panels * kPanel;
  const int64_t pairs = (keys + 1) / 2;
  s.queries.resize(static_cast<size_t>(kQueryRows * dim));
  s.scores.resize(static_cast<size_t>(kQueryRows * score_stride));
  s.probabilities.resize(static_cast<size_t>(kQueryRows * pairs * 2));
  s.sums.resize(kQueryRows);
  std::vector<float> weighted(static_cast<size_t>(kQueryRows * dim));
  for (int64_t first = 0; first < keys; first += kQueryRows) {
    const int64_t rows = std::min<int64_t>(kQueryRows, keys - first);
    std::fill(s.queries.begin(), s.queries.end(), 0);
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(s.queries.data() + r * dim, query.data + (first + r) * query.row_stride,
                  static_cast<size_t>(dim) * sizeof(uint16_t));
    }
    int64_t panel = 0;
    for (; panel + 2 <= panels; panel += 2)
      score_panels<2>(s, dim, panel, score_stride, s.scores.data());
    if (panel < panels) score_panels<1>(s, dim, panel, score_stride, s.scores.data());
    softmax_rows(s, keys, score_stride, pairs * 2, scale);
    for (int64_t row = 0; row < kQueryRows; row += 4) {
      int64_t group = 0;
      for (; group + 4 * kPanel <= dim; group += 4 * kPanel) {
        weigh_values<4>(s, dim, pairs, row, group, weighted.data());
      }
      switch ((dim - group) / kPanel) {
        case 3:
          weigh_values<3>(s, dim, pairs, row, group, weighted.data());
          break;
        case 2:
          weigh_values<2>(s, dim, pairs, row, group, weighted.data());
          break;
        case 1:
          weigh_values<1>(s, dim, pairs, row, group, weighted.data());
          break;
        default:
          break;
      }
    }
    store_rows(s, weighted.data(), rows, dim, out + first * out_row_stride, out_row_stride);
  }
}

// The real length of each sequence when `mask` is a key-padding mask: every row of sequence b
// keeps exactly its first n_b keys (and n_b >= 1). Empty when it is any other mask.
std::vector<int64_t> key_lengths(const at::Tensor& mask, int64_t batch, int64_t heads,
                                 int64_t length) {
  if (mask.dim() != 4 || mask.size(3) != length) return {};
  for (int64_t d = 0; d < 3; ++d) {
    const int64_t want = d == 0 ? batch : d == 1 ? heads : length;
    if (mask.size(d) != 1 && mask.size(d) != want) return {};
  }
  at::Tensor kept;
  if (mask.scalar_type() == at::kBool) {
    kept = mask;
  } else {
    const at::Tensor masked = mask <= -1e30;
    kept = mask == 0;
    if (!at::logical_or(kept, masked).all().item<bool>()) return {};
  }
  const at::Tensor lengths = kept.select(1, 0).select(1, 0).sum(-1).to(at::kLong).contiguous();
  if (lengths.size(0) != 1 && lengths.size(0) != batch) return {};
  const at::Tensor prefix =
      at::arange(length, at::TensorOptions().dtype(at::kLong)).unsqueeze(0) < lengths.unsqueeze(1);
  if (!at::equal(kept.expand({lengths.size(0), kept.size(1), kept.size(2), length}),
                 prefix.unsqueeze(1).unsqueeze(1).expand(
                     {lengths.size(0), kept.size(1), kept.size(2), length}))) {
    return {};
  }
  std::vector<int64_t> result(static_cast<size_t>(batch));
  for (int64_t b = 0; b < batch; ++b) {
    result[static_cast<size_t>(b)] = lengths[lengths.size(0) == 1 ? 0 : b].item<int64_t>();
    if (result[static_cast<size_t>(b)] < 1) return {};
  }
  return result;
}

// The mask of a forward pass is the same tensor for every layer: it is checked once. A tensor
// made under InferenceMode (the engine's forward passes) has no version counter; a traced graph
// makes its mask out of place once, before the first layer, so its identity and data pointer
// stand for its contents there. Elsewhere the version counter catches a change in place.
struct MaskMemo {
  std::optional<c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>> mask;
  const void* data = nullptr;
  int64_t version = -1;
  std::vector<int64_t> lengths;
};

std::vector<int64_t> memoized_key_lengths(const at::Tensor& mask, int64_t batch, int64_t heads,
                                          int64_t length) {
  thread_local MaskMemo memo;
  const int64_t version = mask.is_inference() ? -1 : static_cast<int64_t>(mask._version());
  if (memo.mask && memo.mask->lock().get() == mask.unsafeGetTensorImpl() &&
      memo.data == mask.const_data_ptr() && memo.version == version) {
    return memo.lengths;
  }
  memo.mask.emplace(mask.getIntrusivePtr());
  memo.data = mask.const_data_ptr();
  memo.version = version;
  memo.lengths = key_lengths(mask, batch, heads, length);
  return memo.lengths;
}

bool kernel_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  if (!padded_attention_kernel_available()) return false;
  for (const at::Tensor* t : {&q, &k, &v}) {
    if (!t->device().is_cpu() || t->scalar_type() != at::kBFloat16 || t->dim() != 4 ||
        t->stride(3) != 1 || t->requires_grad()) {
      return false;
    }
  }
  // Keys are read a pair of bf16 at a time.
  return q.sizes() == k.sizes() && q.sizes() == v.sizes() && q.size(3) % kPanel == 0 &&
         k.stride(2) % 2 == 0;
}

at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const std::optional<at::Tensor>& mask, std::optional<double> scale) {
  return at::scaled_dot_product_attention(q, k, v, mask, 0.0, false, scale);
}

}  // namespace

bool padded_attention_kernel_available() {
  static const bool available = cpu_has_avx512() && *cpu_has("avx512bf16");
  return available;
}

at::Tensor padded_attention(const at::Tensor& query, const at::Tensor& key, const at::Tensor& value,
                            const std::optional<at::Tensor>& mask, std::optional<double> scale) {
  if (!kernel_applies(query, key, value))
    return reference_attention(query, key, value, mask, scale);
  const int64_t batch = query.size(0), heads = query.size(1), length = query.size(2),
                dim = query.size(3);
  std::vector<int64_t> lengths;
  if (mask && mask->defined()) {
    lengths = memoized_key_lengths(*mask, batch, heads, length);
    if (lengths.empty()) return reference_attention(query, key, value, mask, scale);
  } else {
    lengths.assign(static_cast<size_t>(batch), length);
  }
  const float softmax_scale =
      static_cast<float>(scale ? *scale : 1.0 / std::sqrt(static_cast<double>(dim)));
  // [batch, length, heads, dim] underneath, as the caller reshapes it to [batch, length, hidden].
  at::Tensor out = at::zeros({batch, length, heads, dim}, query.options());
  const auto* q = query.const_data_ptr<at::BFloat16>();
  const auto* k = key.const_data_ptr<at::BFloat16>();
  const auto* v = value.const_data_ptr<at::BFloat16>();
  auto* o = out.mutable_data_ptr<at::BFloat16>();
  at::parallel_for(0, batch * heads, 1, [&](int64_t begin, int64_t end) {
    thread_local Scratch scratch;
    for (int64_t task = begin; task < end; ++task) {
      // Head-major: each thread's share of tasks covers every sequence, long and short.
      const int64_t h = task / batch, b = task % batch;
      const auto view = [&](const at::Tensor& t, const at::BFloat16* data) {
        return HeadView{data + b * t.stride(0) + h * t.stride(1), t.stride(2)};
      };
      attend_head(scratch, view(query, q), view(key, k), view(value, v),
                  lengths[static_cast<size_t>(b)], dim, softmax_scale,
                  o + (b * length * heads + h) * dim, heads * dim);
    }
  });
  return out.transpose(1, 2);
}

TORCH_LIBRARY(engine, library) {
  library.def(
      "padded_attention(Tensor query, Tensor key, Tensor value, Tensor? mask, float? scale) -> "
      "Tensor");
}

TORCH_LIBRARY_IMPL(engine, CPU, library) { library.impl("padded_attention", &padded_attention); }

}  // namespace engine
