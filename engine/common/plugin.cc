#include "engine/common/plugin.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

namespace engine {
namespace {

std::filesystem::path executable_dir() {
  std::error_code error;
  auto path = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::filesystem::path() : path.parent_path();
}

}  // namespace

void* open_plugin_symbol(const std::string& file_name, const char* override_variable,
                         const char* build_path, int dlopen_flags, const char* symbol,
                         std::string& tried) {
  std::vector<std::string> candidates;
  if (const char* forced = std::getenv(override_variable)) candidates.push_back(forced);
  const auto dir = executable_dir();
  candidates.push_back((dir / file_name).string());
  candidates.push_back((dir / ".." / "lib" / file_name).string());
  if (build_path != nullptr) candidates.push_back(build_path);
  for (const std::string& candidate : candidates) {
    if (!std::filesystem::exists(candidate)) continue;
    void* handle = dlopen(candidate.c_str(), dlopen_flags);
    if (!handle) {
      tried += std::string("\n  ") + dlerror();
      continue;
    }
    if (void* found = dlsym(handle, symbol)) return found;
    tried += "\n  " + candidate + ": no " + symbol;
  }
  if (tried.empty()) tried = "\n  not found beside the executable, in ../lib or in the build";
  return nullptr;
}

}  // namespace engine
