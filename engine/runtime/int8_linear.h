// Linear layers in int8 on the CPU (model.quantize: int8): dynamic quantisation, as ONNX Runtime's
// quantize_dynamic does it. Each weight matrix is quantised once, at load, symmetrically per output
// channel and prepacked for oneDNN; each input is quantised at run time, per tensor and
// asymmetrically, to unsigned 8 bits over [min(x, 0), max(x, 0)] (a GELU's output, mostly
// positive, then gets nearly twice the steps a symmetric scale gives it); the product runs on
// oneDNN's u8×s8 kernels (AVX-512 VNNI), which dequantise, add the bias and apply a GELU on the
// way out, in the model's dtype. On the two cores here that product ran 1.8× (AMD EPYC) to 7× (Xeon without AMX) the
// bf16 one (docs/speed.md). The price: a per-tensor input scale makes a record's score depend,
// within the quantisation step, on the other records of its batch; the same input and config make
// the same batches, so runs, resumed jobs and launches stay byte-identical.
#pragma once

#include <optional>
#include <string>
#include <tuple>

#include <ATen/core/Tensor.h>

namespace engine {

// The ops' names in TorchScript graphs; route_linear_through_int8 (graph_rewrites.h) puts them in
// place of aten::linear.
inline constexpr const char* kQuantizeOp = "engine::quantize_u8";
inline constexpr const char* kInt8LinearOp = "engine::int8_linear";

// Whether this build and CPU run int8_linear well: oneDNN's int8 ops are in LibTorch and the CPU
// has VNNI (AVX-512 VNNI or AVX-VNNI); without it oneDNN falls back to slow paths.
bool int8_linear_available();

// `input` (fp32, bf16 or fp16, any shape) as unsigned 8 bits and its scale and zero point:
// with lo = min(x, 0), hi = max(x, 0), scale = (hi - lo) / 255 (1 when the input is all zeros),
// zero = round(-lo / scale) and q = clamp(round(x / scale) + zero, 0, 255), rounding to nearest
// with ties to even, in fp32 (x times 255 / (hi - lo)). x ≈ (q - zero) · scale.
std::tuple<at::Tensor, double, int64_t> quantize_u8(const at::Tensor& input);

struct PackedInt8Linear {
  at::Tensor weight;  // oneDNN's packed layout (an opaque tensor: sizes [out, in], no storage)
  at::Tensor scale;   // [out] fp32: weight[o] ≈ int8[o] · scale[o]
  at::Tensor bias;    // [out] fp32, or undefined
};

// A linear layer's weight [out, in] (and bias) quantised per output channel and packed.
PackedInt8Linear pack_int8_linear(const at::Tensor& weight, const std::optional<at::Tensor>& bias);

// linear(x, weight, bias) with x = (input - input_zero_point) · input_scale, then `post_op`
// ("none" or "gelu", with `algorithm` "none" or "tanh" as aten::gelu takes it); the result in
// `dtype`.
at::Tensor int8_linear(const at::Tensor& input, double input_scale, int64_t input_zero_point,
                       const at::Tensor& weight, const at::Tensor& weight_scale,
                       const std::optional<at::Tensor>& bias, const std::string& post_op,
                       const std::string& algorithm, c10::ScalarType dtype);

}  // namespace engine
