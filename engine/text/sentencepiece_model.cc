#include "engine/text/sentencepiece_model.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "engine/common/error.h"

namespace engine {
namespace {

constexpr const char* kPluginName = "libengine_sentencepiece.so";

std::filesystem::path executable_dir() {
  std::error_code error;
  auto path = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::filesystem::path() : path.parent_path();
}

// The plugin beside the executable, in ../lib, or where the build put it; ENGINE_SENTENCEPIECE_PLUGIN
// overrides them all.
std::vector<std::string> plugin_candidates() {
  std::vector<std::string> candidates;
  if (const char* forced = std::getenv("ENGINE_SENTENCEPIECE_PLUGIN")) candidates.push_back(forced);
  const auto dir = executable_dir();
  candidates.push_back((dir / kPluginName).string());
  candidates.push_back((dir / ".." / "lib" / kPluginName).string());
#ifdef ENGINE_SENTENCEPIECE_PLUGIN_PATH
  candidates.push_back(ENGINE_SENTENCEPIECE_PLUGIN_PATH);
#endif
  return candidates;
}

CreateSentencePieceModel plugin_entry() {
  static CreateSentencePieceModel entry = [] {
    std::string tried;
    for (const std::string& candidate : plugin_candidates()) {
      if (!std::filesystem::exists(candidate)) continue;
      void* handle = dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (!handle) {
        tried += std::string("\n  ") + dlerror();
        continue;
      }
      if (void* symbol = dlsym(handle, kCreateSentencePieceModelSymbol)) {
        return reinterpret_cast<CreateSentencePieceModel>(symbol);
      }
      tried += "\n  " + candidate + ": no " + kCreateSentencePieceModelSymbol;
    }
    throw ConfigError(fmt::format("cannot load the sentencepiece plugin {}; set "
                                  "ENGINE_SENTENCEPIECE_PLUGIN to its path{}",
                                  kPluginName, tried));
    return CreateSentencePieceModel(nullptr);
  }();
  return entry;
}

}  // namespace

std::unique_ptr<SentencePieceModel> load_sentencepiece_model(const std::string& path) {
  check<ConfigError>(std::filesystem::is_regular_file(path),
                     "sentencepiece model '{}' does not exist", path);
  std::string error;
  std::unique_ptr<SentencePieceModel> model(plugin_entry()(path.c_str(), &error));
  check<ConfigError>(model != nullptr, "cannot load sentencepiece model '{}': {}", path, error);
  return model;
}

}  // namespace engine
