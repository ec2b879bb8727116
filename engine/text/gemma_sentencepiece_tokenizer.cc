#include "engine/text/gemma_sentencepiece_tokenizer.h"

#include "engine/common/error.h"

namespace engine {

GemmaSentencePieceTokenizer::GemmaSentencePieceTokenizer(const std::string& model_file,
                                                         bool add_bos)
    : encoder_(model_file), add_bos_(add_bos) {
  const auto& pieces = encoder_.vocabulary().pieces;
  const auto id_of = [&](const char* text) -> int64_t {
    for (size_t id = 0; id < pieces.size(); ++id) {
      if (pieces[id].text == text) return static_cast<int64_t>(id);
    }
    throw ConfigError(fmt::format("sentencepiece model '{}' has no {} piece", model_file, text));
  };
  special_ = SpecialTokenIds{id_of("<bos>"), id_of("<eos>"), id_of("<pad>"), id_of("<unk>"), -1};
}

std::vector<int64_t> GemmaSentencePieceTokenizer::encode_all(std::string_view text) const {
  const std::vector<int> pieces = encoder_.encode(text);
  return std::vector<int64_t>(pieces.begin(), pieces.end());
}

Encoding GemmaSentencePieceTokenizer::build_single(const std::vector<int64_t>& ids) const {
  Encoding encoding;
  if (add_bos_) encoding.ids.push_back(special_.bos);
  encoding.ids.insert(encoding.ids.end(), ids.begin(), ids.end());
  encoding.type_ids.assign(encoding.ids.size(), 0);
  return encoding;
}

Encoding GemmaSentencePieceTokenizer::build_pair(const std::vector<int64_t>& first,
                                                 const std::vector<int64_t>& second) const {
  Encoding encoding = build_single(first);
  encoding.ids.insert(encoding.ids.end(), second.begin(), second.end());
  encoding.type_ids.assign(encoding.ids.size(), 0);
  return encoding;
}

std::string GemmaSentencePieceTokenizer::id_to_piece(int64_t id) const {
  check<RecordError>(id >= 0 && id < vocab_size(), "token id {} is outside the vocabulary of {}",
                     id, vocab_size());
  return encoder_.vocabulary().pieces[static_cast<size_t>(id)].text;
}

}  // namespace engine
