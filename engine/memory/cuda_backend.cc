#include "engine/memory/cuda_backend.h"

#include <dlfcn.h>

#include "engine/common/plugin.h"

namespace engine {
namespace {

struct Loaded {
  const CudaBackend* backend = nullptr;
  std::string why_not;
};

Loaded load() {
  Loaded loaded;
  // The driver comes with the GPU; without it there is nothing to run on and no reason to pay for
  // LibTorch's CUDA libraries.
  void* driver = dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (driver == nullptr) {
    loaded.why_not = "no CUDA driver (libcuda.so.1) on this machine";
    return loaded;
  }
  dlclose(driver);
  std::string tried;
#ifdef ENGINE_CUDA_PLUGIN_PATH
  const char* build_path = ENGINE_CUDA_PLUGIN_PATH;
#else
  const char* build_path = nullptr;
#endif
  // RTLD_GLOBAL: LibTorch's CUDA libraries register their hooks and kernels process-wide.
  void* symbol = open_plugin_symbol("libengine_cuda.so", "ENGINE_CUDA_PLUGIN", build_path,
                                    RTLD_NOW | RTLD_GLOBAL, kCudaBackendSymbol, tried);
  if (symbol == nullptr) {
    loaded.why_not =
        "the CUDA plugin libengine_cuda.so cannot be loaded (set ENGINE_CUDA_PLUGIN "
        "to its path):" +
        tried;
    return loaded;
  }
  loaded.backend = reinterpret_cast<CudaBackendEntry>(symbol)();
  return loaded;
}

}  // namespace

const CudaBackend* cuda_backend(std::string* why_not) {
  static const Loaded loaded = load();
  if (why_not != nullptr) *why_not = loaded.why_not;
  return loaded.backend;
}

}  // namespace engine
