// tokenizer.json normalizers: what tokenizers does to each piece of text between added tokens
// before pre-tokenization. Only the text matters here, not the offsets tokenizers keeps.
#pragma once

#include <memory>
#include <string>

#include "engine/text/hf_json.h"

namespace engine::hf {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Normalizes valid UTF-8 `text` in place.
  virtual void normalize(std::string& text) const = 0;
};

// The normalizer that `site` describes (BertNormalizer, NFC, NFD, NFKC, NFKD, Lowercase, Strip,
// StripAccents, Replace, Prepend, Precompiled, Nmt, ByteLevel, Sequence); nullptr for null.
std::unique_ptr<Normalizer> make_normalizer(const JsonSite& site);

}  // namespace engine::hf
