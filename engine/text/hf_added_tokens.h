// tokenizer.json's added tokens, found in the text before the model sees it, as tokenizers'
// AddedVocabulary does: tokens with normalized=false are matched in the original text, the text
// between them is normalized, and tokens with normalized=true are matched in that (by their
// normalized content). Matches are leftmost-longest and do not overlap; single_word, lstrip and
// rstrip apply as in tokenizers. With encode_special_tokens (the engine's policy: text cannot
// inject control tokens), a match of a special token is passed over and stays text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/text/hf_normalizers.h"

namespace engine::hf {

struct AddedToken {
  std::string content;
  int64_t id = -1;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
};

// A piece of the input: normalized text for the pre-tokenizer, or an added token's id.
struct TextPiece {
  std::string text;
  int64_t token_id = -1;  // -1: text
  bool at_start = false;  // the text starts where the input starts
};

class AddedVocabulary {
 public:
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer,
                  bool encode_special_tokens);

  // The pieces of valid UTF-8 `text`, its text pieces normalized; empty ones are dropped.
  std::vector<TextPiece> extract_and_normalize(std::string_view text) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // Leftmost-longest matching of a set of strings (tokenizers uses Aho-Corasick; the sets are
  // small and short, so a byte trie walked from each candidate start does the same).
  class Matcher {
   public:
    void add(std::string_view pattern, size_t token);
    bool empty() const { return nodes_.size() == 1; }
    // The leftmost-longest match at or after `from`: {start, end, token}, or start npos.
    struct Match {
      size_t start;
      size_t end;
      size_t token;
    };
    Match find(std::string_view text, size_t from) const;

   private:
    struct Node {
      std::vector<std::pair<unsigned char, size_t>> children;
      size_t token = static_cast<size_t>(-1);
    };
    std::vector<Node> nodes_ = std::vector<Node>(1);
    bool first_bytes_[256] = {};
  };

  void split(std::string_view text, bool at_start, const Matcher& matcher, bool normalize,
             std::vector<TextPiece>& out) const;

  std::vector<AddedToken> tokens_;
  const Normalizer* normalizer_;
  bool encode_special_tokens_;
  Matcher raw_;
  Matcher normalized_;
};

}  // namespace engine::hf
