// The CUDA backend: LibTorch's caching allocator. Compiled and linked in every build; used only
// when the job's device is a CUDA device.
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>

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

}  // namespace

std::unique_ptr<DeviceMemory> make_cuda_memory(c10::DeviceIndex index, int64_t limit) {
  return std::make_unique<CudaMemory>(index, limit);
}

}  // namespace engine
