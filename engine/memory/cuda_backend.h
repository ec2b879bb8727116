// LibTorch's CUDA half (libtorch_cuda, libc10_cuda and the CUDA libraries they pull in) costs about
// 230 MB of resident memory the moment it is loaded, GPU or not. The engine links only LibTorch's
// CPU libraries; everything that needs CUDA lives in the plugin libengine_cuda.so
// (memory/cuda_plugin.cc), built and linked on every build and opened at run time only when a
// CUDA driver (libcuda.so.1) is present. Once it is open, LibTorch's CUDA hooks are registered
// and CUDA tensors, TorchScript loading onto a GPU and autocast work from the engine's own code.
#pragma once

#include <cstdint>
#include <string>

namespace engine {

class DeviceMemory;

struct CudaBackend {
  int (*device_count)();
  // The major compute capability of device `index`.
  int (*compute_capability)(int index);
  // A new CUDA DeviceMemory for device `index` (the caller owns it); see device_memory.h.
  DeviceMemory* (*make_memory)(int index, int64_t limit);
};

// The plugin's entry point, exported with C linkage.
inline constexpr const char* kCudaBackendSymbol = "engine_cuda_backend";
using CudaBackendEntry = const CudaBackend* (*)();

// The CUDA backend, loaded on first use; nullptr when there is no CUDA driver on this machine or
// the plugin cannot be opened (`why_not` says which). Never loads anything when no driver is
// present.
const CudaBackend* cuda_backend(std::string* why_not = nullptr);

// How many devices it shows: cuda_device_count() in runtime/devices.h.

}  // namespace engine
