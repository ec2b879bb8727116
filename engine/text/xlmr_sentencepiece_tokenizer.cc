#include "engine/text/xlmr_sentencepiece_tokenizer.h"

#include "engine/common/error.h"

namespace engine {
namespace {

// Hugging Face's fairseq mapping: the four fairseq specials come first, so every sentencepiece
// id moves up by one; sentencepiece's own <unk> (id 0) becomes fairseq's <unk> (3).
constexpr int64_t kFairseqOffset = 1;

}  // namespace

XlmrSentencePieceTokenizer::XlmrSentencePieceTokenizer(const std::string& model_file)
    : encoder_(model_file) {
  const auto pieces = static_cast<int64_t>(encoder_.vocabulary().pieces.size());
  special_ = SpecialTokenIds{0, 2, 1, 3, pieces + kFairseqOffset};
  vocab_size_ = pieces + kFairseqOffset + 1;
}

XlmrSentencePieceTokenizer::~XlmrSentencePieceTokenizer() = default;

std::vector<int64_t> XlmrSentencePieceTokenizer::encode_all(std::string_view text) const {
  const std::vector<int> pieces = encoder_.encode(text);
  std::vector<int64_t> ids;
  ids.reserve(pieces.size());
  for (int piece : pieces) ids.push_back(piece == 0 ? special_.unk : piece + kFairseqOffset);
  return ids;
}

Encoding XlmrSentencePieceTokenizer::build_single(const std::vector<int64_t>& ids) const {
  Encoding encoding;
  encoding.ids.reserve(ids.size() + 2);
  encoding.ids.push_back(special_.bos);
  encoding.ids.insert(encoding.ids.end(), ids.begin(), ids.end());
  encoding.ids.push_back(special_.eos);
  encoding.type_ids.assign(encoding.ids.size(), 0);
  return encoding;
}

Encoding XlmrSentencePieceTokenizer::build_pair(const std::vector<int64_t>& first,
                                                const std::vector<int64_t>& second) const {
  Encoding encoding = build_single(first);
  encoding.ids.push_back(special_.eos);
  encoding.ids.insert(encoding.ids.end(), second.begin(), second.end());
  encoding.ids.push_back(special_.eos);
  // XLM-R has a single token type: every position is 0.
  encoding.type_ids.assign(encoding.ids.size(), 0);
  return encoding;
}

std::string XlmrSentencePieceTokenizer::id_to_piece(int64_t id) const {
  switch (id) {
    case 0: return "<s>";
    case 1: return "<pad>";
    case 2: return "</s>";
    case 3: return "<unk>";
    default: break;
  }
  if (id == special_.mask) return "<mask>";
  check<RecordError>(id > 3 && id < vocab_size_, "token id {} is outside the vocabulary of {}",
                     id, vocab_size_);
  return encoder_.vocabulary().pieces[static_cast<size_t>(id - kFairseqOffset)].text;
}

}  // namespace engine
