// The host backend: the process's resident set from /proc. The peak is the kernel's high-water
// mark (VmHWM), which only a write to /proc/self/clear_refs can reset.
#include <unistd.h>

#include <fstream>
#include <string>

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
  MemoryStats stats() const override {
    MemoryStats stats;
    stats.allocated = stats.reserved = proc_status_bytes("VmRSS");
    stats.peak_allocated = stats.peak_reserved = proc_status_bytes("VmHWM");
    stats.total = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
    stats.free = static_cast<int64_t>(sysconf(_SC_AVPHYS_PAGES)) * sysconf(_SC_PAGE_SIZE);
    return stats;
  }

  void reset_peak() override {
    // "5" resets the peak RSS (Linux 4.0+); without permission the peak stays as it was.
    std::ofstream("/proc/self/clear_refs") << "5";
  }

  void empty_cache() override {}

  std::string name() const override { return "host (process RSS)"; }
};

}  // namespace

std::unique_ptr<DeviceMemory> make_host_memory() { return std::make_unique<HostMemory>(); }

}  // namespace engine
