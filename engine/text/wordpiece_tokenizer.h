// BERT's WordPiece tokenizer (vocab.txt): transformers' BertTokenizer, step for step. Basic
// tokenization first (characters lower-cased one by one when the model is uncased, control
// characters dropped, every CJK ideograph its own word, NFC, accents stripped by NFD when asked,
// punctuation split off), then greedy longest-match-first with "##" continuations; a word of more
// than 100 characters, or one that cannot be covered, is [UNK]. Unicode properties come from
// utf8proc. Pairs are "[CLS] a [SEP] b [SEP]" with token types 0 and 1.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "engine/text/tokenizer.h"

namespace engine {

struct WordPieceOptions {
  bool lowercase = true;
  int strip_accents = -1;  // -1: as lowercase (transformers' None), 0: never, 1: always
  bool tokenize_chinese_chars = true;
};

class WordPieceTokenizer : public Tokenizer {
 public:
  WordPieceTokenizer(const std::string& vocab_file, const WordPieceOptions& options);

  Encoding build_single(const std::vector<int64_t>& ids) const override;
  Encoding build_pair(const std::vector<int64_t>& first,
                      const std::vector<int64_t>& second) const override;
  size_t special_token_count(bool pair) const override { return pair ? 3 : 2; }
  std::string id_to_piece(int64_t id) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }
  const SpecialTokenIds& special_tokens() const override { return special_; }

  // The words of basic tokenization, before WordPiece (exposed for tests).
  std::vector<std::u32string> basic_tokens(std::string_view text) const;

 protected:
  std::vector<int64_t> encode_all(std::string_view text) const override;

 private:
  void word_pieces(const std::u32string& word, std::vector<int64_t>& ids) const;

  WordPieceOptions options_;
  std::unordered_map<std::string, int64_t> vocabulary_;
  std::vector<std::string> pieces_;
  SpecialTokenIds special_;
  int64_t cls_ = -1;
  int64_t sep_ = -1;
};

}  // namespace engine
