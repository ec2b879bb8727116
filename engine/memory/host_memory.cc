// The host backend: the counting CPU allocator (counting_cpu_allocator.h) for the bytes of live
// tensors and the large blocks it keeps for reuse. Reserved is live plus kept.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "engine/memory/counting_cpu_allocator.h"
#include "engine/memory/device_memory.h"

namespace engine {

// A "Name:   1234 kB" field of /proc/self/status, in bytes; 0 when absent.
static int64_t proc_status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1)) * 1024;
  }
  return 0;
}

ResidentMemory process_resident() { return {proc_status_bytes("VmRSS"), proc_status_bytes("VmHWM")}; }

namespace {

class HostMemory : public DeviceMemory {
 public:
  explicit HostMemory(int64_t limit) : counts_(CountingCpuAllocator::install()) {
    counts_.set_limit(limit);
  }

  MemoryStats stats() const override {
    MemoryStats stats;
    stats.allocated = counts_.allocated();
    stats.peak_allocated = counts_.peak();
    stats.reserved = counts_.allocated() + counts_.cached();
    stats.peak_reserved = std::max(counts_.peak_held(), stats.reserved);
    stats.total = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
    stats.free = static_cast<int64_t>(sysconf(_SC_AVPHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
    if (counts_.limit() > 0) {
      stats.total = std::min(stats.total, counts_.limit());
      stats.free = std::max<int64_t>(0, counts_.limit() - counts_.allocated());
    }
    return stats;
  }

  // Only the tensors' peak: the resident peak stays the process's own since it started, load
  // included, which is the figure a user compares with what the machine has.
  void reset_peak() override { counts_.reset_peak(); }

  // Unmaps the large blocks the pool keeps (host_block_pool.h); small ones are the C library's.
  void empty_cache() override { counts_.release_cached(); }

  std::string name() const override {
    if (counts_.limit() <= 0) return "host (counting allocator)";
    return fmt::format("host (counting allocator, limit {})", format_bytes(counts_.limit()));
  }

 private:
  CountingCpuAllocator& counts_;
};

}  // namespace

std::unique_ptr<DeviceMemory> make_host_memory(int64_t limit) {
  return std::make_unique<HostMemory>(limit);
}

}  // namespace engine
