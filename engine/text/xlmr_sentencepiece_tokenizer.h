// XLM-RoBERTa's sentencepiece tokenizer with the id mapping Hugging Face uses for its checkpoints
// (bge-reranker, bce-reranker, BGE-M3): <s>=0, <pad>=1, </s>=2, <unk>=3, every other sentencepiece
// id shifted by one, <mask> last. Pairs are "<s> a </s></s> b </s>".
#pragma once

#include <memory>
#include <string>

#include "engine/text/sentencepiece_encoder.h"
#include "engine/text/tokenizer.h"

namespace engine {

class XlmrSentencePieceTokenizer : public Tokenizer {
 public:
  explicit XlmrSentencePieceTokenizer(const std::string& model_file);
  ~XlmrSentencePieceTokenizer() override;

  Encoding build_single(const std::vector<int64_t>& ids) const override;
  Encoding build_pair(const std::vector<int64_t>& first,
                      const std::vector<int64_t>& second) const override;
  size_t special_token_count(bool pair) const override { return pair ? 4 : 2; }
  std::string id_to_piece(int64_t id) const override;
  int64_t vocab_size() const override { return vocab_size_; }
  const SpecialTokenIds& special_tokens() const override { return special_; }

 protected:
  std::vector<int64_t> encode_all(std::string_view text) const override;

 private:
  SentencePieceEncoder encoder_;
  SpecialTokenIds special_;
  int64_t vocab_size_ = 0;
};

}  // namespace engine
