// Which dtypes a model runs in: `model.dtype` for floating-point parameters and buffers (integer
// buffers such as position ids always stay int64), and `model.embedding_dtype` for the word
// embedding table alone, whose lookup result the graph promotes back to the model's dtype.
// `auto` picks what is fast on the device, measured, not assumed: bf16 on a GPU of compute
// capability 8 or more, else fp16; on a CPU, bf16 when a bf16 matrix product beats fp32, else fp32.
// fp16 on a CPU is refused when it is slower than fp32 there.
#pragma once

#include <optional>
#include <string>

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "engine/config/config.h"

namespace engine {

struct PrecisionPlan {
  c10::ScalarType dtype = c10::kFloat;
  std::optional<c10::ScalarType> embedding_dtype;  // none: the same as dtype
  std::string reason;                              // why, for `engine check`
  // The graph was traced in `dtype` (manifest graph_dtype): its tensors are not cast at load
  // (the embedding table aside) and it runs as it is, without autocast.
  bool graph_in_dtype = false;
};

// `exported` is the manifest's dtype ("float32", "bfloat16", "float16"), used for `bundle`;
// `graph_dtype` the dtype its graph was traced in: a graph traced in a lower precision runs in it
// only, and `auto` takes it. Throws ConfigError for a dtype the device cannot run well, or one
// the graph was not traced for.
PrecisionPlan make_precision_plan(const ModelConfig& config, const c10::Device& device,
                                  const std::string& exported = "float32",
                                  const std::string& graph_dtype = "float32");

// GFLOP/s of a square matrix product of `size` in `dtype` on the CPU (a few repetitions),
// measured once per process: later calls give the first answer.
double cpu_matmul_gflops(c10::ScalarType dtype, int64_t size = 512);

}  // namespace engine
