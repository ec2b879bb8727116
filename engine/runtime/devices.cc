#include "engine/runtime/devices.h"

#include <sched.h>

#include <thread>

#include <fmt/format.h>

#include "engine/common/error.h"
#include "engine/memory/cuda_backend.h"

namespace engine {

std::vector<int> available_cpu_list() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

int available_cpus() {
  const size_t listed = available_cpu_list().size();
  if (listed > 0) return static_cast<int>(listed);
  return static_cast<int>(std::max(std::thread::hardware_concurrency(), 1u));
}

int thread_count(int configured, int sharing) {
  if (configured > 0) return configured;
  return std::max(1, available_cpus() / std::max(1, sharing));
}

int cuda_device_count() {
  const CudaBackend* backend = cuda_backend();
  return backend == nullptr ? 0 : backend->device_count();
}

c10::Device resolve_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  std::string why_not;
  const CudaBackend* backend = cuda_backend(&why_not);
  const int count = backend == nullptr ? 0 : backend->device_count();
  if (name == "auto") return count > 0 ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  c10::Device device(name == "cuda" ? "cuda:0" : name);
  check<ConfigError>(count > 0, "model.device is '{}' but no CUDA device is available{}", name,
                     why_not.empty() ? "" : ": " + why_not);
  check<ConfigError>(device.index() < count,
                     "model.device is '{}' but only {} CUDA device(s) are visible", name, count);
  return device;
}

std::optional<std::string> rank_device(const std::string& device, int local_rank) {
  if (device != "auto" && device != "cuda") return std::nullopt;
  const int gpus = cuda_device_count();
  if (gpus <= 1) return std::nullopt;
  return fmt::format("cuda:{}", local_rank % gpus);
}

std::vector<int> visible_gpus() {
  std::vector<int> gpus;
  for (int gpu = 0, count = cuda_device_count(); gpu < count; ++gpu) gpus.push_back(gpu);
  return gpus;
}

}  // namespace engine
