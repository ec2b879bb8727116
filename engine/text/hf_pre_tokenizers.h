// tokenizer.json pre-tokenizers: how each normalized piece of text is cut into the words that
// the model tokenizes one by one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/text/hf_json.h"

namespace engine::hf {

struct PreToken {
  std::string text;
  // Whether the word starts where the input text starts (Metaspace's prepend_scheme "first").
  bool at_start;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces every word by the words it is cut into; empty words are dropped.
  virtual void pre_tokenize(std::vector<PreToken>& words) const = 0;
};

// The pre-tokenizer that `site` describes (BertPreTokenizer, Whitespace, WhitespaceSplit,
// ByteLevel, Metaspace, Split, Digits, Punctuation, CharDelimiterSplit, FixedLength, Sequence);
// nullptr for null.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonSite& site);

}  // namespace engine::hf
