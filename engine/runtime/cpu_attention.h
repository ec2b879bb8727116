// Attention for bf16 graphs on the CPU. LibTorch's CPU scaled_dot_product_attention runs its bf16
// matrix products through a reference kernel on CPUs without AMX (about 100 GFLOP/s on the two
// cores here, against 845 for a large bf16 product: docs/speed.md). This op computes the same
// softmax(q kᵀ · scale + mask) v with AVX-512 BF16 dot products accumulated in fp32, only over each
// sequence's real tokens, when the mask is a key-padding mask (what HF encoders pass); with any
// other mask, dtype or CPU it calls ATen's scaled_dot_product_attention unchanged.
#pragma once

#include <optional>

#include <ATen/core/Tensor.h>

namespace engine {

// The op's name in TorchScript graphs; route_attention_through_engine (torchscript_model.cc)
// puts it in place of aten::scaled_dot_product_attention.
inline constexpr const char* kPaddedAttentionOp = "engine::padded_attention";

// Whether this CPU runs the op's own kernel (AVX-512 BF16).
bool padded_attention_kernel_available();

// q, k, v: [batch, heads, length, head_dim]; mask: additive (0 kept, below -1e30 or -inf masked)
// or bool (true kept), broadcastable to [batch, heads, length, length]. Rows past a sequence's
// real tokens come back as zeros when the kernel runs: they are padding, never read by a pooled
// output, and no real token attends to them.
at::Tensor padded_attention(const at::Tensor& query, const at::Tensor& key, const at::Tensor& value,
                            const std::optional<at::Tensor>& mask, std::optional<double> scale);

}  // namespace engine
