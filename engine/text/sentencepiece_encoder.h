// Text to sentencepiece ids: the library normalizes, and for unigram models the engine's own
// UnigramEncoder segments (see unigram_encoder.h for why). Other model types use the library's
// segmentation.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/text/sentencepiece_model.h"
#include "engine/text/sentencepiece_vocabulary.h"
#include "engine/text/unigram_encoder.h"

namespace engine {

class SentencePieceEncoder {
 public:
  explicit SentencePieceEncoder(const std::string& model_file);

  // sentencepiece ids; throws RecordError when the library fails on the text.
  std::vector<int> encode(std::string_view text) const;
  const SentencePieceVocabulary& vocabulary() const { return vocabulary_; }

 private:
  std::unique_ptr<SentencePieceModel> library_;
  SentencePieceVocabulary vocabulary_;
  std::optional<UnigramEncoder> unigram_;
};

}  // namespace engine
