// Rewrites of a TorchScript graph before it first runs (model.graph: onednn, on the CPU): the same
// computation, routed to faster kernels than ATen's defaults on this hardware. docs/speed.md has
// the measurements behind each.
#pragma once

#include <c10/core/ScalarType.h>

namespace torch::jit {
struct Graph;
}  // namespace torch::jit

namespace engine {

// Each aten::linear becomes mkldnn::_linear_pointwise, a following GELU folded in. Returns how
// many it rewrote.
int route_linear_through_onednn(torch::jit::Graph& graph);

// In a frozen graph (weights as constants), each aten::linear whose weight is a floating-point
// matrix of at least 16 × 16 that nothing but linear layers reads becomes engine::quantize_u8_rows
// of its input (once per input) and engine::int8_linear with the weight quantised and packed
// (int8_linear.h), a following GELU folded in; its output in `dtype`. The rest are left as they
// are. Returns how many it rewrote.
int route_linear_through_int8(torch::jit::Graph& graph, c10::ScalarType dtype);

// oneDNN keeps a compiled primitive (with its scratchpad) for every input shape it has seen, in two
// caches of 1,024 entries by default: ideep's (LRU_CACHE_CAPACITY) and oneDNN's own
// (ONEDNN_PRIMITIVE_CACHE_CAPACITY). A server sees batches of ever new shapes, and its resident
// memory grew by 240 MiB over ten minutes until they filled (docs/serving.md). Sets both to
// kOneDnnCacheEntries unless the environment already sets them; call before LibTorch runs
// anything (they are read once, at the first primitive). Outputs do not change: a primitive made
// again computes the same bits.
inline constexpr int kOneDnnCacheEntries = 256;
void bound_onednn_caches();

// Whether oneDNN's linear primitive runs `dtype` on this CPU; asked once per dtype.
bool onednn_linear_runs(c10::ScalarType dtype);

// Each aten::scaled_dot_product_attention without dropout, causal masking or grouped heads becomes
// engine::padded_attention (cpu_attention.h), which runs its own kernel for bf16 with a
// key-padding mask and ATen's otherwise. Returns how many it rewrote.
int route_attention_through_engine(torch::jit::Graph& graph);

}  // namespace engine
