// A sentencepiece model behind an interface that names no sentencepiece type.
//
// Why not call libsentencepiece directly: Debian's libsentencepiece defines FLAGS_minloglevel as an
// absl::Flag<int> object, and LibTorch's libc10 defines the same symbol as a 4-byte int. In one
// process the dynamic linker binds both to libc10's int, and sentencepiece's flag constructor
// overwrites the mutex beside it: the first TorchScript forward then deadlocks. So sentencepiece
// lives in a small plugin (libengine_sentencepiece.so) opened with RTLD_DEEPBIND | RTLD_LOCAL,
// where it binds to its own symbols and exports none. See docs/build.md.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace engine {

class SentencePieceModel {
 public:
  virtual ~SentencePieceModel() = default;
  // `text` after the model's normalisation (NFKC rules, whitespace as U+2581). False with `error`
  // set when sentencepiece fails.
  virtual bool normalize(std::string_view text, std::string& normalized,
                         std::string& error) const = 0;
  // The library's own segmentation into ids, for models the engine does not segment itself.
  virtual bool encode(std::string_view text, std::vector<int>& ids, std::string& error) const = 0;
  virtual int piece_size() const = 0;
};

// Loads a .model file through the plugin. Throws ConfigError when the plugin or the file cannot
// be loaded.
std::unique_ptr<SentencePieceModel> load_sentencepiece_model(const std::string& path);

// The plugin's entry point: returns a new model, or null with `error` filled.
using CreateSentencePieceModel = SentencePieceModel* (*)(const char* path, std::string* error);
constexpr const char* kCreateSentencePieceModelSymbol = "engine_create_sentencepiece_model";

}  // namespace engine
