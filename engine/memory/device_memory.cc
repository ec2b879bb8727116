#include "engine/memory/device_memory.h"

#include <fmt/format.h>

#include "engine/common/error.h"
#include "engine/memory/cuda_backend.h"

namespace engine {

std::unique_ptr<DeviceMemory> make_device_memory(const c10::Device& device, int64_t limit) {
  if (device.is_cuda()) return make_cuda_memory(device.has_index() ? device.index() : 0, limit);
  return make_host_memory(limit);
}

std::unique_ptr<DeviceMemory> make_cuda_memory(c10::DeviceIndex index, int64_t limit) {
  std::string why_not;
  const CudaBackend* backend = cuda_backend(&why_not);
  check<ConfigError>(backend != nullptr, "no CUDA memory backend: {}", why_not);
  return std::unique_ptr<DeviceMemory>(backend->make_memory(index, limit));
}

std::string format_bytes(int64_t bytes) {
  const double value = static_cast<double>(bytes);
  if (bytes >= (1LL << 30)) return fmt::format("{:.2f} GiB", value / (1LL << 30));
  if (bytes >= (1LL << 20)) return fmt::format("{:.1f} MiB", value / (1LL << 20));
  if (bytes >= (1LL << 10)) return fmt::format("{:.1f} KiB", value / (1LL << 10));
  return fmt::format("{} B", bytes);
}

}  // namespace engine
