// What the engine knows about a device's memory, behind one interface. Backends: CUDA (LibTorch's
// caching allocator) and host (the counting CPU allocator and its pool of large blocks).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <c10/core/Device.h>

namespace engine {

struct MemoryStats {
  int64_t allocated = 0;       // bytes in live tensors
  int64_t peak_allocated = 0;  // since the last reset_peak()
  int64_t reserved = 0;        // bytes held by the allocator, used or cached
  int64_t peak_reserved = 0;
  int64_t total = 0;           // the device's memory
  int64_t free = 0;            // free on the device, as its driver or kernel reports
};

class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;
  virtual MemoryStats stats() const = 0;
  virtual void reset_peak() = 0;
  // Gives cached, unused blocks back to the device.
  virtual void empty_cache() = 0;
  // "cuda:0 (caching allocator)", "host (counting allocator)".
  virtual std::string name() const = 0;
};

// The backend for `device`: CUDA for a CUDA device, host otherwise. `limit` (bytes, 0 for none)
// caps what the backend lets tensors take: on the host the counting allocator refuses past it,
// on CUDA the caching allocator's memory fraction is set from it.
std::unique_ptr<DeviceMemory> make_device_memory(const c10::Device& device, int64_t limit = 0);
std::unique_ptr<DeviceMemory> make_host_memory(int64_t limit);
std::unique_ptr<DeviceMemory> make_cuda_memory(c10::DeviceIndex index, int64_t limit);

std::string format_bytes(int64_t bytes);

// The whole process's resident memory from /proc/self/status: now (VmRSS) and its peak since the
// process started (VmHWM; exec starts it afresh), libraries, caches and all.
struct ResidentMemory {
  int64_t now = 0;
  int64_t peak = 0;
};
ResidentMemory process_resident();

}  // namespace engine
