// What this process can run on, found in one place: the CPUs its affinity mask allows (which
// Slurm, taskset and `engine launch` narrow), the CUDA devices the driver shows, and what the
// device settings (model.device, a cluster rank's GPU, `launch --devices auto`) resolve to. CUDA
// is only looked for when a setting asks for it or can use it: a job on the CPU never loads
// LibTorch's CUDA libraries (memory/cuda_backend.h).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <c10/core/Device.h>

namespace engine {

// The CPUs this process may run on: their numbers, empty when the mask cannot be read.
std::vector<int> available_cpu_list();
// How many: every core when the mask cannot be read.
int available_cpus();

// The intra-op thread count of a process: model.threads when it is set (`configured` > 0), else
// its share of the CPUs this process may use when `sharing` processes split them (the workers of
// a launch, the ranks of a node), at least 1. The one rule for a single process, a rank and a
// launch worker.
int thread_count(int configured, int sharing = 1);

// Visible CUDA devices; 0 without a CUDA driver or when the CUDA plugin cannot be opened.
int cuda_device_count();

// model.device: "auto" is the first CUDA device when one is present, else the CPU. Throws
// ConfigError for a CUDA device that is not there, saying why CUDA is missing when it is.
c10::Device resolve_device(const std::string& name);

// The model.device a cluster rank takes: torchrun starts one process per GPU of a node, all
// seeing every GPU, so with "auto" or "cuda" each takes the GPU of its local rank; under Slurm's
// --gpus-per-task each task sees only its own, and nothing changes. nullopt: keep the setting.
std::optional<std::string> rank_device(const std::string& device, int local_rank);

// `engine launch --devices auto`: every visible GPU, none when there is no CUDA device.
std::vector<int> visible_gpus();

}  // namespace engine
