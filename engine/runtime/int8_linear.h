// Linear layers in int8 on the CPU (model.quantize: int8): dynamic quantisation with a scale per
// token. Each weight matrix is quantised once, at load, symmetrically per output channel and
// prepacked for oneDNN; each input row (one token's features) is quantised at run time with its
// own scale and zero point, to unsigned 8 bits over [min(x, 0), max(x, 0)] (a GELU's output,
// mostly positive, gets nearly twice the steps a symmetric scale gives it). oneDNN's u8×s8 kernels
// (AVX-512 VNNI) make the integer product, exact in int32 and scaled per channel to fp32; an
// epilogue applies each row's scale and zero point, the bias and a GELU, in the model's dtype.
// Since no scale is shared between rows, a record's score does not depend on the other records of
// its batch (an earlier per-tensor scale made it so, and moved a query's passages against each
// other when they fell into different batches: docs/speed.md).
#pragma once

#include <optional>
#include <string>
#include <tuple>

#include <ATen/core/Tensor.h>

namespace engine {

// The ops' names in TorchScript graphs; route_linear_through_int8 (graph_rewrites.h) puts them in
// place of aten::linear.
inline constexpr const char* kQuantizeOp = "engine::quantize_u8_rows";
inline constexpr const char* kInt8LinearOp = "engine::int8_linear";

// Whether this build and CPU run int8_linear well: oneDNN's int8 ops are in LibTorch and the CPU
// has VNNI (AVX-512 VNNI or AVX-VNNI); without it oneDNN falls back to slow paths.
bool int8_linear_available();

// `input` (fp32, bf16 or fp16, any shape [..., features]) as unsigned 8 bits, with a scale and a
// zero point per row (all dimensions but the last flattened; both fp32 tensors of [rows]): with
// lo = min(row, 0), hi = max(row, 0), scale = (hi - lo) / 255 (1 for a row of zeros or a
// non-finite one), zero = round(-lo · 255 / (hi - lo)) and q = clamp(round(x · 255 / (hi - lo)) +
// zero, 0, 255), rounding to nearest with ties to even, in fp32. x ≈ (q - zero) · scale.
std::tuple<at::Tensor, at::Tensor, at::Tensor> quantize_u8_rows(const at::Tensor& input);

struct PackedInt8Linear {
  at::Tensor weight;        // oneDNN's packed layout (an opaque tensor: sizes [out, in])
  at::Tensor scale;         // [out] fp32: weight[o] ≈ int8[o] · scale[o]
  at::Tensor compensation;  // [out] fp32: scale[o] · Σ_i int8[o][i], for the inputs' zero points
  at::Tensor bias;          // [out] fp32, or undefined
};

// A linear layer's weight [out, in] (and bias) quantised per output channel and packed.
PackedInt8Linear pack_int8_linear(const at::Tensor& weight, const std::optional<at::Tensor>& bias);

// linear(x, weight, bias) with x = (input - zero_point[row]) · scale[row] (quantize_u8_rows), then
// `post_op` ("none" or "gelu", with `algorithm` "none" or "tanh" as aten::gelu takes it); the
// result in `dtype` (fp32, bf16 or fp16).
at::Tensor int8_linear(const at::Tensor& input, const at::Tensor& input_scale,
                       const at::Tensor& input_zero_point, const PackedInt8Linear& layer,
                       const std::string& post_op, const std::string& algorithm,
                       c10::ScalarType dtype);

}  // namespace engine
