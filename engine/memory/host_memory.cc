// The host backend: the counting CPU allocator (counting_cpu_allocator.h) for the bytes of live
// tensors, and the process's resident set from /proc for what the kernel holds. The resident peak
// is the kernel's high-water mark (VmHWM), which only a write to /proc/self/clear_refs resets.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "engine/memory/counting_cpu_allocator.h"
#include "engine/memory/device_memory.h"

namespace engine {
namespace {

// A "Name:   1234 kB" field of /proc/self/status, in bytes; 0 when absent.
int64_t proc_status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1)) * 1024;
  }
  return 0;
}

class HostMemory : public DeviceMemory {
 public:
  explicit HostMemory(int64_t limit) : counts_(CountingCpuAllocator::install()) {
    counts_.set_limit(limit);
  }

  MemoryStats stats() const override {
    MemoryStats stats;
    stats.allocated = counts_.allocated();
    stats.peak_allocated = counts_.peak();
    stats.reserved = proc_status_bytes("VmRSS");
    stats.peak_reserved = proc_status_bytes("VmHWM");
    stats.total = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
    stats.free = static_cast<int64_t>(sysconf(_SC_AVPHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
    if (counts_.limit() > 0) {
      stats.total = std::min(stats.total, counts_.limit());
      stats.free = std::max<int64_t>(0, counts_.limit() - counts_.allocated());
    }
    return stats;
  }

  void reset_peak() override {
    counts_.reset_peak();
    // "5" resets the resident peak (Linux 4.0+); without permission it stays as it was.
    std::ofstream("/proc/self/clear_refs") << "5";
  }

  // LibTorch's CPU allocator keeps no cache: freed tensors go straight back to the C library.
  void empty_cache() override {}

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
