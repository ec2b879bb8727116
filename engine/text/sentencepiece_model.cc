#include "engine/text/sentencepiece_model.h"

#include <dlfcn.h>
#include <filesystem>

#include "engine/common/error.h"
#include "engine/common/plugin.h"

namespace engine {
namespace {

constexpr const char* kPluginName = "libengine_sentencepiece.so";

CreateSentencePieceModel plugin_entry() {
  static CreateSentencePieceModel entry = [] {
    std::string tried;
#ifdef ENGINE_SENTENCEPIECE_PLUGIN_PATH
    const char* build_path = ENGINE_SENTENCEPIECE_PLUGIN_PATH;
#else
    const char* build_path = nullptr;
#endif
    void* symbol = open_plugin_symbol(kPluginName, "ENGINE_SENTENCEPIECE_PLUGIN", build_path,
                                      RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND,
                                      kCreateSentencePieceModelSymbol, tried);
    check<ConfigError>(symbol != nullptr,
                       "cannot load the sentencepiece plugin {}; set ENGINE_SENTENCEPIECE_PLUGIN "
                       "to its path{}",
                       kPluginName, tried);
    return reinterpret_cast<CreateSentencePieceModel>(symbol);
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
