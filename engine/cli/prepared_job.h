// Everything a job needs, loaded and checked: the config, the bundle on its device, the family's
// adapter and the memory backend. Shared by the commands that run a model.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/config/config.h"
#include "engine/memory/device_memory.h"
#include "engine/runtime/family_adapter.h"
#include "engine/runtime/model_bundle.h"

namespace engine {

struct PreparedJob {
  Config config;
  ModelBundle bundle;
  std::unique_ptr<FamilyAdapter> adapter;
  std::unique_ptr<DeviceMemory> memory;
  int threads = 1;
};

// Reads the config (with `overrides`), sets the log level and LibTorch's thread count
// (model.threads, or every core this process may use), installs the memory backend, loads the
// bundle.
std::unique_ptr<PreparedJob> prepare_job(const std::string& config_file,
                                         const std::vector<std::string>& overrides);

}  // namespace engine
