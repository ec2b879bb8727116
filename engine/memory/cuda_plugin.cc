// The CUDA plugin (see cuda_backend.h): device queries and the CUDA DeviceMemory, LibTorch's
// caching allocator. Built and linked in every build; opened only where a CUDA driver is present.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>

#include "engine/memory/cuda_backend.h"
#include "engine/memory/device_memory.h"

namespace engine {
namespace {

using c10::CachingDeviceAllocator::StatType;

class CudaMemory : public DeviceMemory {
 public:
  CudaMemory(c10::DeviceIndex index, int64_t limit) : index_(index) {
    if (limit <= 0) return;
    const MemoryStats now = stats();
    if (now.total > 0) {
      const double fraction = std::min(1.0, static_cast<double>(limit) / static_cast<double>(now.total));
      c10::cuda::CUDACachingAllocator::setMemoryFraction(fraction, index_);
    }
  }

  MemoryStats stats() const override {
    const auto device_stats = c10::cuda::CUDACachingAllocator::getDeviceStats(index_);
    const auto aggregate = static_cast<size_t>(StatType::AGGREGATE);
    MemoryStats stats;
    stats.allocated = device_stats.allocated_bytes[aggregate].current;
    stats.peak_allocated = device_stats.allocated_bytes[aggregate].peak;
    stats.reserved = device_stats.reserved_bytes[aggregate].current;
    stats.peak_reserved = device_stats.reserved_bytes[aggregate].peak;
    c10::cuda::CUDAGuard guard(index_);
    size_t free = 0, total = 0;
    if (cudaMemGetInfo(&free, &total) == cudaSuccess) {
      stats.free = static_cast<int64_t>(free);
      stats.total = static_cast<int64_t>(total);
    }
    return stats;
  }

  void reset_peak() override { c10::cuda::CUDACachingAllocator::resetPeakStats(index_); }

  void empty_cache() override { c10::cuda::CUDACachingAllocator::emptyCache(); }

  std::string name() const override {
    return fmt::format("cuda:{} (caching allocator)", static_cast<int>(index_));
  }

 private:
  c10::DeviceIndex index_;
};

int device_count() { return static_cast<int>(c10::cuda::device_count()); }

int compute_capability(int index) {
  return at::cuda::getDeviceProperties(static_cast<c10::DeviceIndex>(index))->major;
}

DeviceMemory* make_memory(int index, int64_t limit) {
  return new CudaMemory(static_cast<c10::DeviceIndex>(index), limit);
}

}  // namespace
}  // namespace engine

extern "C" __attribute__((visibility("default"))) const engine::CudaBackend* engine_cuda_backend() {
  static const engine::CudaBackend backend{&engine::device_count, &engine::compute_capability,
                                           &engine::make_memory};
  return &backend;
}
