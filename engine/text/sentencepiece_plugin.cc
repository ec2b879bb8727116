// The sentencepiece plugin: the only code that includes sentencepiece's headers. Built as
// libengine_sentencepiece.so and opened by sentencepiece_model.cc (see its header for why).
#include <sentencepiece_processor.h>

#include "engine/text/sentencepiece_model.h"

namespace {

class PluginModel : public engine::SentencePieceModel {
 public:
  bool load(const char* path, std::string* error) {
    const auto status = processor_.Load(path);
    if (!status.ok()) *error = status.ToString();
    return status.ok();
  }

  bool encode(std::string_view text, std::vector<int>& ids, std::string& error) const override {
    const auto status = processor_.Encode({text.data(), text.size()}, &ids);
    if (!status.ok()) error = status.ToString();
    return status.ok();
  }

  // The pieces of an encoding cover the normalized text exactly (unknown runs included), and this
  // library version has no public Normalize().
  bool normalize(std::string_view text, std::string& normalized,
                 std::string& error) const override {
    std::vector<std::string> pieces;
    const auto status = processor_.Encode({text.data(), text.size()}, &pieces);
    if (!status.ok()) {
      error = status.ToString();
      return false;
    }
    normalized.clear();
    for (const std::string& piece : pieces) normalized += piece;
    return true;
  }

  int piece_size() const override { return processor_.GetPieceSize(); }

 private:
  sentencepiece::SentencePieceProcessor processor_;
};

}  // namespace

extern "C" __attribute__((visibility("default"))) engine::SentencePieceModel*
engine_create_sentencepiece_model(const char* path, std::string* error) {
  auto model = std::make_unique<PluginModel>();
  if (!model->load(path, error)) return nullptr;
  return model.release();
}
