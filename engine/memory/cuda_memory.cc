// The CUDA backend: LibTorch's caching allocator. Compiled and linked in every build; used only
// when the job's device is a CUDA device.
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include "engine/memory/device_memory.h"

namespace engine {
namespace {

using c10::CachingDeviceAllocator::StatType;

class CudaMemory : public DeviceMemory {
 public:
  explicit CudaMemory(c10::DeviceIndex index) : index_(index) {}

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

}  // namespace

std::unique_ptr<DeviceMemory> make_cuda_memory(c10::DeviceIndex index) {
  return std::make_unique<CudaMemory>(index);
}

}  // namespace engine
