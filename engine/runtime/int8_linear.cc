#include "engine/runtime/int8_linear.h"

// GCC 12 warns inside its own AVX-512 headers ("'__Y' may be used uninitialized": the
// _mm512_undefined_* idiom they use, and "is used uninitialized" in _mm512_reduce_max_ps), wherever
// their intrinsics are inlined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "engine/runtime/cpu_vector_math.h"

namespace engine {
namespace {

constexpr int64_t kChunk = 1 << 16;  // elements per parallel task
// The fp32 product of one block of rows: a few MiB, inside the L3 cache.
constexpr int64_t kProductBlockBytes = 4 << 20;

int64_t rows_per_task(int64_t row_length) { return std::max<int64_t>(1, kChunk / row_length); }

float bf16_to_float(uint16_t bits) {
  const uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &widened, sizeof(value));
  return value;
}

template <typename T>
float element(const T* data, int64_t i) {
  if constexpr (std::is_same_v<T, uint16_t>) {
    return bf16_to_float(data[i]);
  } else {
    return data[i];
  }
}

ENGINE_AVX512 inline __m512 load16(const float* data) { return _mm512_loadu_ps(data); }

ENGINE_AVX512 inline __m512 load16(const uint16_t* data) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(data));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

struct Range {
  float lowest = 0.0f;  // the range always holds 0, so that 0 is exact
  float highest = 0.0f;
};

template <typename T>
ENGINE_AVX512 Range range_avx512(const T* data, int64_t n) {
  __m512 lowest = _mm512_setzero_ps(), highest = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = load16(data + i);
    lowest = _mm512_min_ps(lowest, v);
    highest = _mm512_max_ps(highest, v);
  }
  Range range{_mm512_reduce_min_ps(lowest), _mm512_reduce_max_ps(highest)};
  for (; i < n; ++i) {
    range.lowest = std::min(range.lowest, element(data, i));
    range.highest = std::max(range.highest, element(data, i));
  }
  return range;
}

template <typename T>
Range range_scalar(const T* data, int64_t n) {
  Range range;
  for (int64_t i = 0; i < n; ++i) {
    range.lowest = std::min(range.lowest, element(data, i));
    range.highest = std::max(range.highest, element(data, i));
  }
  return range;
}

uint8_t quantize_one(float value, float inverse, float zero_point) {
  const float rounded = std::nearbyint(value * inverse) + zero_point;
  return static_cast<uint8_t>(std::clamp(rounded, 0.0f, 255.0f));
}

// The same rounding as the scalar tail: to nearest, ties to even (the default MXCSR mode).
template <typename T>
ENGINE_AVX512 void quantize_avx512(const T* data, uint8_t* out, int64_t n, float inverse,
                                   float zero) {
  const __m512 scale = _mm512_set1_ps(inverse);
  const __m512i zero_point = _mm512_set1_epi32(static_cast<int>(zero));
  const __m512i low = _mm512_setzero_si512();
  const __m512i high = _mm512_set1_epi32(255);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i q =
        _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(load16(data + i), scale)), zero_point);
    q = _mm512_min_epi32(_mm512_max_epi32(q, low), high);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm512_cvtepi32_epi8(q));
  }
  for (; i < n; ++i) out[i] = quantize_one(element(data, i), inverse, zero);
}

template <typename T>
void quantize_scalar(const T* data, uint8_t* out, int64_t n, float inverse, float zero) {
  for (int64_t i = 0; i < n; ++i) out[i] = quantize_one(element(data, i), inverse, zero);
}

// One row: its range, then its bytes; returns the scale and writes the zero point.
template <typename T>
float quantize_row(const T* data, uint8_t* out, int64_t n, bool vector, float* zero_point) {
  Range range = vector ? range_avx512(data, n) : range_scalar(data, n);
  float width = range.highest - range.lowest;
  if (!(width > 0.0f) || !std::isfinite(width)) {
    // Zeros are exact at any scale; a non-finite row has no good one (its products are lost
    // either way), but it must not reach the integer conversions below.
    width = 255.0f;
    range.lowest = 0.0f;
  }
  const float inverse = 255.0f / width;
  const float zero = std::clamp(std::nearbyint(-range.lowest * inverse), 0.0f, 255.0f);
  if (vector) {
    quantize_avx512(data, out, n, inverse, zero);
  } else {
    quantize_scalar(data, out, n, inverse, zero);
  }
  *zero_point = zero;
  return width / 255.0f;
}

template <typename T>
std::tuple<at::Tensor, at::Tensor, at::Tensor> quantize_rows(const at::Tensor& input,
                                                             const T* data) {
  const int64_t length = input.dim() == 0 ? 1 : input.size(-1);
  const int64_t rows = length == 0 ? 0 : input.numel() / length;
  const bool vector = cpu_has_avx512();
  at::Tensor out = at::empty(input.sizes(), input.options().dtype(at::kByte));
  at::Tensor scales = at::empty({rows}, at::kFloat), zeros = at::empty({rows}, at::kFloat);
  auto* q = out.mutable_data_ptr<uint8_t>();
  float* scale = scales.mutable_data_ptr<float>();
  float* zero = zeros.mutable_data_ptr<float>();
  at::parallel_for(0, rows, rows_per_task(length), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      scale[r] = quantize_row(data + r * length, q + r * length, length, vector, zero + r);
    }
  });
  return {out, scales, zeros};
}

// What the epilogue applies to one row of the scaled integer product p (p[o] = scale[o] ·
// Σ_i q[i]·int8[o][i]): y[o] = s·p[o] + bias[o] - s·z·compensation[o], then the GELU.
struct RowEpilogue {
  const float* bias;          // [out] or null
  const float* compensation;  // [out]
  int post_op;                // 0 none, 1 GELU (erf), 2 GELU (tanh)
};

float gelu_scalar(float x, int post_op) {
  if (post_op == 1) return 0.5f * x * (1.0f + std::erf(x * 0.70710678118654752f));
  if (post_op == 2) {
    return 0.5f * x * (1.0f + std::tanh(0.79788456080286536f * (x + 0.044715f * x * x * x)));
  }
  return x;
}

template <typename Out>
void finish_row_scalar(const RowEpilogue& e, const float* product, Out* out, int64_t n, float s,
                       float sz) {
  for (int64_t o = 0; o < n; ++o) {
    const float base = (e.bias != nullptr ? e.bias[o] : 0.0f) - sz * e.compensation[o];
    out[o] = static_cast<Out>(gelu_scalar(std::fma(product[o], s, base), e.post_op));
  }
}

template <typename Out>
ENGINE_AVX512 void store16(Out* out, __m512 v) {
  if constexpr (std::is_same_v<Out, float>) {
    _mm512_storeu_ps(out, v);
  } else if constexpr (std::is_same_v<Out, at::BFloat16>) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), to_bf16x16(v));
  } else {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), to_fp16x16(v));
  }
}

template <typename Out>
ENGINE_AVX512 void finish_row_avx512(const RowEpilogue& e, const float* product, Out* out,
                                     int64_t n, float s, float sz) {
  const __m512 scale = _mm512_set1_ps(s), shift = _mm512_set1_ps(sz);
  int64_t o = 0;
  for (; o + 16 <= n; o += 16) {
    const __m512 bias = e.bias != nullptr ? _mm512_loadu_ps(e.bias + o) : _mm512_setzero_ps();
    const __m512 base = _mm512_fnmadd_ps(shift, _mm512_loadu_ps(e.compensation + o), bias);
    __m512 y = _mm512_fmadd_ps(_mm512_loadu_ps(product + o), scale, base);
    if (e.post_op == 1) y = gelu_erf16(y);
    if (e.post_op == 2) y = gelu_tanh16(y);
    store16(out + o, y);
  }
  const RowEpilogue tail{e.bias != nullptr ? e.bias + o : nullptr, e.compensation + o, e.post_op};
  finish_row_scalar(tail, product + o, out + o, n - o, s, sz);
}

// Rows [first, first + product rows) of the output, from their product.
template <typename Out>
void finish_rows(const RowEpilogue& e, const at::Tensor& product, const float* scale,
                 const float* zero, Out* out) {
  const int64_t n = product.size(-1);
  const int64_t rows = product.size(0);
  const float* p = product.const_data_ptr<float>();
  const bool vector = cpu_has_avx512();
  at::parallel_for(0, rows, rows_per_task(n), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float s = scale[r], sz = scale[r] * zero[r];
      if (vector) {
        finish_row_avx512(e, p + r * n, out + r * n, n, s, sz);
      } else {
        finish_row_scalar(e, p + r * n, out + r * n, n, s, sz);
      }
    }
  });
}

int post_op_code(const std::string& post_op, const std::string& algorithm) {
  if (post_op == "none") return 0;
  TORCH_CHECK(post_op == "gelu", "engine::int8_linear: unknown post_op '", post_op, "'");
  if (algorithm == "tanh") return 2;
  TORCH_CHECK(algorithm.empty() || algorithm == "none",
              "engine::int8_linear: unknown GELU approximation '", algorithm, "'");
  return 1;
}

c10::OperatorHandle onednn_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
}

at::Tensor call_boxed(const c10::OperatorHandle& op, torch::jit::Stack stack) {
  op.callBoxed(stack);
  return stack.at(0).toTensor();
}

}  // namespace

bool int8_linear_available() {
  static const bool available = [] {
    if (!*cpu_has("avx512vnni") && !*cpu_has("avxvnni")) return false;
    try {
      // A small product, checked against fp32: the ops exist and run on this CPU.
      const at::Tensor x = at::linspace(-1.0, 1.0, 4 * 64).reshape({4, 64});
      const at::Tensor w = at::linspace(1.0, -1.0, 32 * 64).reshape({32, 64});
      const PackedInt8Linear packed = pack_int8_linear(w, std::nullopt);
      const auto [q, scale, zero_point] = quantize_u8_rows(x);
      const at::Tensor y = int8_linear(q, scale, zero_point, packed, "none", "", at::kFloat);
      // Each of the 64 products is off by at most 1/254 (the weight's half step) plus
      // (1 + 1/254) · 2/255 (the input's step, whole at the clamp); the outputs reach 21.
      return (y - at::linear(x, w)).abs().max().item<double>() < 0.76;
    } catch (const std::exception&) {
      return false;
    }
  }();
  return available;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> quantize_u8_rows(const at::Tensor& input) {
  TORCH_CHECK(input.is_cpu() && input.is_floating_point(),
              "engine::quantize_u8_rows takes a floating-point CPU tensor, not ", input.toString());
  if (input.scalar_type() == at::kBFloat16) {
    const at::Tensor contiguous = input.contiguous();
    return quantize_rows(
        contiguous, reinterpret_cast<const uint16_t*>(contiguous.const_data_ptr<at::BFloat16>()));
  }
  const at::Tensor contiguous = input.to(at::kFloat).contiguous();
  return quantize_rows(contiguous, contiguous.const_data_ptr<float>());
}

PackedInt8Linear pack_int8_linear(const at::Tensor& weight, const std::optional<at::Tensor>& bias) {
  TORCH_CHECK(weight.dim() == 2 && weight.is_floating_point(),
              "an int8 linear layer takes a floating-point [out, in] weight, not ",
              weight.toString(), " of ", weight.dim(), " dimensions");
  const at::Tensor w = weight.to(at::kFloat).contiguous();
  at::Tensor scale = w.abs().amax(1).div_(127.0);
  scale.masked_fill_(scale == 0, 1.0);  // an all-zero row: any scale is exact
  const at::Tensor quantized =
      at::round(w / scale.unsqueeze(1)).clamp_(-127, 127).to(at::kChar).contiguous();
  static const c10::OperatorHandle prepack = onednn_op("onednn::qlinear_prepack");
  PackedInt8Linear packed;
  packed.weight = call_boxed(prepack, {quantized, c10::IValue()});
  packed.scale = scale.contiguous();
  // The row sums are exact integers (at most 127 · in, far inside fp32's 2^24 for real layers).
  packed.compensation =
      (quantized.to(at::kDouble).sum(1) * scale.to(at::kDouble)).to(at::kFloat).contiguous();
  if (bias && bias->defined()) packed.bias = bias->to(at::kFloat).contiguous();
  return packed;
}

at::Tensor int8_linear(const at::Tensor& input, const at::Tensor& input_scale,
                       const at::Tensor& input_zero_point, const PackedInt8Linear& layer,
                       const std::string& post_op, const std::string& algorithm,
                       c10::ScalarType dtype) {
  TORCH_CHECK(input.scalar_type() == at::kByte, "engine::int8_linear takes the uint8 output of ",
              kQuantizeOp, ", not ", input.toString());
  const int64_t rows = input.size(-1) == 0 ? 0 : input.numel() / input.size(-1);
  TORCH_CHECK(input_scale.scalar_type() == at::kFloat && input_scale.numel() == rows &&
                  input_zero_point.scalar_type() == at::kFloat && input_zero_point.numel() == rows,
              "engine::int8_linear takes an fp32 scale and zero point per input row (", rows,
              "), not ", input_scale.toString(), " and ", input_zero_point.toString());
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kBFloat16 || dtype == at::kHalf,
              "engine::int8_linear writes fp32, bf16 or fp16, not ", c10::toString(dtype));
  const int code = post_op_code(post_op, algorithm);
  // The integer product, scaled per output channel, in fp32, a block of rows at a time, each
  // finished (row scales, bias, GELU) while it is still in cache: one fp32 product of a whole
  // batch would be written to and read back from memory (4096 × 3072 took 34 ms to make where
  // blocks took 22, and as long as a bf16 product).
  static const c10::OperatorHandle pointwise = onednn_op("onednn::qlinear_pointwise");
  const at::Tensor zero_points = at::zeros({layer.scale.size(0)}, at::kLong);
  const int64_t out_features = layer.scale.size(0);
  const at::Tensor rows_in = input.contiguous().view({rows, input.size(-1)});
  std::vector<int64_t> out_sizes = input.sizes().vec();
  out_sizes.back() = out_features;
  at::Tensor out = at::empty(out_sizes, input.options().dtype(dtype));
  const RowEpilogue epilogue{layer.bias.defined() ? layer.bias.const_data_ptr<float>() : nullptr,
                             layer.compensation.const_data_ptr<float>(), code};
  const at::Tensor scales = input_scale.contiguous(), zeros = input_zero_point.contiguous();
  const auto finish_block = [&](int64_t first, int64_t last) {
    const at::Tensor product = call_boxed(
        pointwise, {rows_in.slice(0, first, last), 1.0, int64_t{0}, layer.weight, layer.scale,
                    zero_points, c10::IValue(), 1.0, int64_t{0}, at::kFloat, std::string("none"),
                    c10::List<std::optional<at::Scalar>>(), std::string()});
    const float* s = scales.const_data_ptr<float>() + first;
    const float* z = zeros.const_data_ptr<float>() + first;
    if (dtype == at::kFloat) {
      finish_rows(epilogue, product, s, z, out.mutable_data_ptr<float>() + first * out_features);
    } else if (dtype == at::kBFloat16) {
      finish_rows(epilogue, product, s, z,
                  out.mutable_data_ptr<at::BFloat16>() + first * out_features);
    } else {
      finish_rows(epilogue, product, s, z, out.mutable_data_ptr<at::Half>() + first * out_features);
    }
  };
  const int64_t block = std::max<int64_t>(16, kProductBlockBytes / (4 * out_features));
  for (int64_t first = 0; first < rows; first += block) {
    finish_block(first, std::min(rows, first + block));
  }
  return out;
}

namespace {

at::Tensor int8_linear_op(const at::Tensor& input, const at::Tensor& input_scale,
                          const at::Tensor& input_zero_point, const at::Tensor& weight,
                          const at::Tensor& weight_scale, const at::Tensor& compensation,
                          const std::optional<at::Tensor>& bias, c10::string_view post_op,
                          c10::string_view algorithm, c10::ScalarType dtype) {
  PackedInt8Linear layer{weight, weight_scale, compensation,
                         bias && bias->defined() ? *bias : at::Tensor()};
  return int8_linear(input, input_scale, input_zero_point, layer, std::string(post_op),
                     std::string(algorithm), dtype);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(engine, library) {
  library.def("quantize_u8_rows(Tensor input) -> (Tensor, Tensor, Tensor)");
  library.def(
      "int8_linear(Tensor input, Tensor input_scale, Tensor input_zero_point, Tensor weight, "
      "Tensor weight_scale, Tensor compensation, Tensor? bias, str post_op, str algorithm, "
      "ScalarType dtype) -> Tensor");
}

TORCH_LIBRARY_IMPL(engine, CPU, library) {
  library.impl("quantize_u8_rows", &quantize_u8_rows);
  library.impl("int8_linear", &int8_linear_op);
}

// The packed weight is a oneDNN tensor, whose dispatch key outranks the input's.
TORCH_LIBRARY_IMPL(engine, MkldnnCPU, library) { library.impl("int8_linear", &int8_linear_op); }

}  // namespace engine
