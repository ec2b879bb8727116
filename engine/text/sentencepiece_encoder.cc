#include "engine/text/sentencepiece_encoder.h"

#include "engine/common/error.h"

namespace engine {

SentencePieceEncoder::SentencePieceEncoder(const std::string& model_file)
    : library_(load_sentencepiece_model(model_file)),
      vocabulary_(read_sentencepiece_vocabulary(model_file)) {
  check<ConfigError>(static_cast<size_t>(library_->piece_size()) == vocabulary_.pieces.size(),
                     "sentencepiece model '{}': the library reads {} pieces, the file has {}",
                     model_file, library_->piece_size(), vocabulary_.pieces.size());
  if (vocabulary_.model_type == SentencePieceVocabulary::ModelType::kUnigram) {
    unigram_.emplace(vocabulary_);
  }
}

std::vector<int> SentencePieceEncoder::encode(std::string_view text) const {
  std::string error;
  std::vector<int> ids;
  if (!unigram_) {
    check<RecordError>(library_->encode(text, ids, error),
                       "sentencepiece could not encode the text: {}", error);
    return ids;
  }
  std::string normalized;
  check<RecordError>(library_->normalize(text, normalized, error),
                     "sentencepiece could not normalize the text: {}", error);
  return unigram_->encode(normalized);
}

}  // namespace engine
