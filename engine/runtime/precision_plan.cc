#include "engine/runtime/precision_plan.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include <chrono>
#include <map>
#include <mutex>
#include <utility>

#include "engine/common/error.h"
#include "engine/memory/cuda_backend.h"
#include "engine/runtime/model_bundle.h"

namespace engine {

namespace {

double measure_matmul_gflops(c10::ScalarType dtype, int64_t size) {
  c10::InferenceMode inference;
  const at::Tensor a = at::randn({size, size}).to(dtype);
  const at::Tensor b = at::randn({size, size}).to(dtype);
  at::matmul(a, b);  // warm-up: kernels chosen, caches filled
  const int repetitions = 4;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < repetitions; ++i) at::matmul(a, b);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return 2.0 * static_cast<double>(size * size * size) * repetitions / seconds / 1e9;
}

}  // namespace

// Measured once per process and dtype: where two dtypes run at about the same rate, measuring
// again could answer the other way, and one process must not take both decisions.
double cpu_matmul_gflops(c10::ScalarType dtype, int64_t size) {
  static std::mutex mutex;
  static std::map<std::pair<c10::ScalarType, int64_t>, double> measured;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto key = std::make_pair(dtype, size);
  const auto known = measured.find(key);
  if (known != measured.end()) return known->second;
  return measured.emplace(key, measure_matmul_gflops(dtype, size)).first->second;
}

namespace {

c10::ScalarType auto_dtype(const c10::Device& device, std::string& reason) {
  if (device.is_cuda()) {
    const int major = cuda_backend()->compute_capability(device.index());
    reason = major >= 8 ? "auto: bf16 on a GPU of compute capability 8+"
                        : "auto: fp16 on a GPU older than compute capability 8";
    return major >= 8 ? c10::kBFloat16 : c10::kHalf;
  }
  const double fp32 = cpu_matmul_gflops(c10::kFloat);
  const double bf16 = cpu_matmul_gflops(c10::kBFloat16);
  reason = fmt::format("auto: a 512^3 product ran at {:.0f} GFLOP/s in bf16, {:.0f} in fp32", bf16,
                       fp32);
  return bf16 > fp32 ? c10::kBFloat16 : c10::kFloat;
}

}  // namespace

PrecisionPlan make_precision_plan(const ModelConfig& config, const c10::Device& device,
                                  const std::string& exported, const std::string& graph_dtype) {
  PrecisionPlan plan;
  const auto manifest_dtype = [](const std::string& name) {
    return name == "bfloat16" ? c10::kBFloat16 : name == "float16" ? c10::kHalf : c10::kFloat;
  };
  const c10::ScalarType traced = manifest_dtype(graph_dtype);
  if (config.dtype == "bundle") {
    plan.dtype = manifest_dtype(exported);
    plan.reason = "as exported";
  } else if (config.dtype == "auto" && traced != c10::kFloat) {
    plan.dtype = traced;
    plan.reason = fmt::format("auto: the graph was traced in {}", graph_dtype);
  } else if (config.dtype == "auto") {
    plan.dtype = auto_dtype(device, plan.reason);
  } else {
    plan.dtype = parse_dtype(config.dtype);
    plan.reason = "model.dtype";
  }
  if (traced != c10::kFloat) {
    check<ConfigError>(plan.dtype == traced,
                       "model.dtype {} cannot run this bundle: its graph was traced in {} "
                       "(engine.json graph_dtype, from tools/export.py --dtype); use "
                       "model.dtype: bundle, or export the checkpoint again in the dtype you want",
                       config.dtype, graph_dtype);
    plan.graph_in_dtype = true;
  }
  if (plan.dtype == c10::kHalf && device.is_cpu()) {
    const double fp32 = cpu_matmul_gflops(c10::kFloat);
    const double fp16 = cpu_matmul_gflops(c10::kHalf);
    check<ConfigError>(fp16 > fp32,
                       "model.dtype fp16 is slower than fp32 on this CPU ({:.0f} against {:.0f} "
                       "GFLOP/s for a 512^3 product); use bf16 (or auto) or fp32",
                       fp16, fp32);
  }
  if (config.embedding_dtype == "int8") {
    plan.embedding_dtype = c10::kChar;
  } else if (config.embedding_dtype != "same") {
    plan.embedding_dtype = parse_dtype(config.embedding_dtype);
  }
  return plan;
}

}  // namespace engine
