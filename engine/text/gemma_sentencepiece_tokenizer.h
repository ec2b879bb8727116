// Gemma's sentencepiece tokenizer (tokenizer.model: BPE with byte fallback, no dummy prefix):
// sentencepiece ids as they are, <bos> before a sequence when the manifest asks for it.
#pragma once

#include <string>

#include "engine/text/sentencepiece_encoder.h"
#include "engine/text/tokenizer.h"

namespace engine {

class GemmaSentencePieceTokenizer : public Tokenizer {
 public:
  GemmaSentencePieceTokenizer(const std::string& model_file, bool add_bos);

  Encoding build_single(const std::vector<int64_t>& ids) const override;
  // Decoder rerankers build their own prompt; a plain pair is the two texts one after the other.
  Encoding build_pair(const std::vector<int64_t>& first,
                      const std::vector<int64_t>& second) const override;
  size_t special_token_count(bool) const override { return add_bos_ ? 1 : 0; }
  std::string id_to_piece(int64_t id) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(encoder_.vocabulary().pieces.size()); }
  const SpecialTokenIds& special_tokens() const override { return special_; }

 protected:
  std::vector<int64_t> encode_all(std::string_view text) const override;

 private:
  SentencePieceEncoder encoder_;
  SpecialTokenIds special_;
  bool add_bos_;
};

}  // namespace engine
