#include "engine/memory/counting_cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/alignment.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Exception.h>

#include <cstring>

#include "engine/memory/device_memory.h"
#include "engine/memory/host_block_pool.h"

namespace engine {
namespace {

// Each block starts with a header holding its size, so the deleter knows what to give back.
// The header is a whole alignment unit, so the data keeps LibTorch's alignment.
constexpr size_t kHeader = c10::gAlignment;

// Above LibTorch's default allocator (priority 0), so that ours is the one in use.
constexpr uint8_t kPriority = 100;

// The counts and the pool of the installed allocator; set once by install(), never destroyed
// (tensors may outlive main()).
CountingCpuAllocator* installed_counts = nullptr;
HostBlockPool* installed_pool = nullptr;

bool pooled(size_t block_bytes) { return block_bytes >= HostBlockPool::kMinPooled; }

class CountingAllocator : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t bytes) override {
    CountingCpuAllocator& counts = *installed_counts;
    const auto size = static_cast<int64_t>(bytes);
    TORCH_CHECK_WITH(OutOfMemoryError, counts.reserve(size), "CPU out of memory: allocating ",
                     format_bytes(size), " would pass memory.limit of ",
                     format_bytes(counts.limit()), " (", format_bytes(counts.allocated()),
                     " in use)");
    char* base = pooled(bytes + kHeader)
                     ? static_cast<char*>(installed_pool->take(bytes + kHeader))
                     : static_cast<char*>(c10::alloc_cpu(bytes + kHeader));
    if (base == nullptr) {
      counts.release(size);
      TORCH_CHECK_WITH(OutOfMemoryError, false, "CPU out of memory: the system refused ",
                       format_bytes(size));
    }
    counts.note_held(counts.allocated() + installed_pool->cached_bytes());
    std::memcpy(base, &bytes, sizeof(bytes));
    // Data and context are the same pointer, as raw_allocate() requires; the deleter finds the
    // header in front of it.
    char* data = base + kHeader;
    return {data, data, &CountingAllocator::release, c10::Device(c10::kCPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &CountingAllocator::release; }

  void copy_data(void* destination, const void* source, size_t count) const override {
    default_copy_data(destination, source, count);
  }

 private:
  static void release(void* data) {
    char* base = static_cast<char*>(data) - kHeader;
    size_t bytes = 0;
    std::memcpy(&bytes, base, sizeof(bytes));
    installed_counts->release(static_cast<int64_t>(bytes));
    if (pooled(bytes + kHeader)) {
      installed_pool->give_back(base, bytes + kHeader);
    } else {
      c10::free_cpu(base);
    }
  }
};

}  // namespace

bool CountingCpuAllocator::reserve(int64_t bytes) {
  const int64_t limit = limit_.load();
  const int64_t now = allocated_.fetch_add(bytes) + bytes;
  if (limit > 0 && now > limit) {
    allocated_.fetch_sub(bytes);
    refused_.fetch_add(1);
    return false;
  }
  for (int64_t peak = peak_.load(); now > peak && !peak_.compare_exchange_weak(peak, now);) {
  }
  return true;
}

void CountingCpuAllocator::set_limit(int64_t bytes) { limit_.store(bytes); }

void CountingCpuAllocator::note_held(int64_t held) {
  for (int64_t peak = peak_held_.load();
       held > peak && !peak_held_.compare_exchange_weak(peak, held);) {
  }
}

int64_t CountingCpuAllocator::cached() const { return installed_pool->cached_bytes(); }

int64_t CountingCpuAllocator::release_cached() { return installed_pool->release_cached(); }

CountingCpuAllocator& CountingCpuAllocator::install() {
  static CountingCpuAllocator* counts = [] {
    installed_counts = new CountingCpuAllocator();
    installed_pool = new HostBlockPool();
    static CountingAllocator allocator;
    c10::SetCPUAllocator(&allocator, kPriority);
    return installed_counts;
  }();
  return *counts;
}

}  // namespace engine
