#include "engine/runtime/int8_linear.h"

// GCC 12 warns inside its own AVX-512 headers ("'__Y' may be used uninitialized": the
// _mm512_undefined_* idiom they use, and "is used uninitialized" in _mm512_reduce_max_ps), wherever
// their intrinsics are inlined.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <immintrin.h>

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

namespace engine {
namespace {

#define ENGINE_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

constexpr int64_t kChunk = 1 << 16;  // elements per parallel task

bool avx512_available() {
  static const bool available =
      __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return available;
}

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

template <typename T>
std::tuple<at::Tensor, double, int64_t> quantize_contiguous(const at::Tensor& input,
                                                            const T* data) {
  const int64_t n = input.numel();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const bool vector = avx512_available();
  std::vector<Range> ranges(static_cast<size_t>(chunks));
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t start = c * kChunk, count = std::min(kChunk, n - start);
      ranges[static_cast<size_t>(c)] =
          vector ? range_avx512(data + start, count) : range_scalar(data + start, count);
    }
  });
  Range range;
  for (const Range& r : ranges) {
    range.lowest = std::min(range.lowest, r.lowest);
    range.highest = std::max(range.highest, r.highest);
  }
  float width = range.highest - range.lowest;
  if (!(width > 0.0f) || !std::isfinite(width)) {
    // Zeros are exact at any scale; a non-finite input has no good one (and its batch's products
    // are lost either way), but it must not reach the integer conversions below.
    width = 255.0f;
    range.lowest = 0.0f;
  }
  const float inverse = 255.0f / width;
  const float zero = std::clamp(std::nearbyint(-range.lowest * inverse), 0.0f, 255.0f);
  at::Tensor out = at::empty(input.sizes(), input.options().dtype(at::kByte));
  auto* q = out.mutable_data_ptr<uint8_t>();
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const int64_t start = c * kChunk, count = std::min(kChunk, n - start);
      if (vector) {
        quantize_avx512(data + start, q + start, count, inverse, zero);
      } else {
        quantize_scalar(data + start, q + start, count, inverse, zero);
      }
    }
  });
  return {out, static_cast<double>(width) / 255.0, static_cast<int64_t>(zero)};
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
    if (!__builtin_cpu_supports("avx512vnni") && !__builtin_cpu_supports("avxvnni")) return false;
    try {
      // A small product, checked against fp32: the ops exist and run on this CPU.
      const at::Tensor x = at::linspace(-1.0, 1.0, 4 * 64).reshape({4, 64});
      const at::Tensor w = at::linspace(1.0, -1.0, 32 * 64).reshape({32, 64});
      const PackedInt8Linear packed = pack_int8_linear(w, std::nullopt);
      const auto [q, scale, zero_point] = quantize_u8(x);
      const at::Tensor y = int8_linear(q, scale, zero_point, packed.weight, packed.scale,
                                       std::nullopt, "none", "", at::kFloat);
      // Each of the 64 products is off by at most 1/254 (the weight's half step) plus
      // (1 + 1/254) · 2/255 (the input's step, whole at the clamp); the outputs reach 21.
      return (y - at::linear(x, w)).abs().max().item<double>() < 0.76;
    } catch (const std::exception&) {
      return false;
    }
  }();
  return available;
}

std::tuple<at::Tensor, double, int64_t> quantize_u8(const at::Tensor& input) {
  TORCH_CHECK(input.is_cpu() && input.is_floating_point(),
              "engine::quantize_u8 takes a floating-point CPU tensor, not ", input.toString());
  if (input.scalar_type() == at::kBFloat16) {
    const at::Tensor contiguous = input.contiguous();
    return quantize_contiguous(
        contiguous, reinterpret_cast<const uint16_t*>(contiguous.const_data_ptr<at::BFloat16>()));
  }
  const at::Tensor contiguous = input.to(at::kFloat).contiguous();
  return quantize_contiguous(contiguous, contiguous.const_data_ptr<float>());
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
  if (bias && bias->defined()) packed.bias = bias->to(at::kFloat).contiguous();
  return packed;
}

at::Tensor int8_linear(const at::Tensor& input, double input_scale, int64_t input_zero_point,
                       const at::Tensor& weight, const at::Tensor& weight_scale,
                       const std::optional<at::Tensor>& bias, const std::string& post_op,
                       const std::string& algorithm, c10::ScalarType dtype) {
  TORCH_CHECK(input.scalar_type() == at::kByte, "engine::int8_linear takes the uint8 output of ",
              kQuantizeOp, ", not ", input.toString());
  static const c10::OperatorHandle pointwise = onednn_op("onednn::qlinear_pointwise");
  const at::Tensor zero_points = at::zeros({weight_scale.size(0)}, at::kLong);
  c10::IValue bias_value;
  if (bias && bias->defined()) bias_value = *bias;
  return call_boxed(pointwise, {input.contiguous(), input_scale, input_zero_point, weight,
                                weight_scale, zero_points, bias_value, 1.0, int64_t{0}, dtype,
                                post_op, c10::List<std::optional<at::Scalar>>(), algorithm});
}

namespace {

at::Tensor int8_linear_op(const at::Tensor& input, double input_scale, int64_t input_zero_point,
                          const at::Tensor& weight, const at::Tensor& weight_scale,
                          const std::optional<at::Tensor>& bias, c10::string_view post_op,
                          c10::string_view algorithm, c10::ScalarType dtype) {
  return int8_linear(input, input_scale, input_zero_point, weight, weight_scale, bias,
                     std::string(post_op), std::string(algorithm), dtype);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(engine, library) {
  library.def("quantize_u8(Tensor input) -> (Tensor, float, int)");
  library.def(
      "int8_linear(Tensor input, float input_scale, int input_zero_point, Tensor weight, "
      "Tensor weight_scale, "
      "Tensor? bias, str post_op, str algorithm, ScalarType dtype) -> Tensor");
}

TORCH_LIBRARY_IMPL(engine, CPU, library) {
  library.impl("quantize_u8", &quantize_u8);
  library.impl("int8_linear", &int8_linear_op);
}

// The packed weight is a oneDNN tensor, whose dispatch key outranks the input's.
TORCH_LIBRARY_IMPL(engine, MkldnnCPU, library) { library.impl("int8_linear", &int8_linear_op); }

}  // namespace engine
