// The Precompiled normalizer: sentencepiece's precompiled_charsmap (a darts-clone double-array
// trie over UTF-8 bytes and a pool of NUL-terminated replacement strings), applied as tokenizers
// applies it. Each extended grapheme cluster shorter than 6 bytes is looked up whole and, when
// some prefix of it is in the trie, replaced by the shortest such prefix's string (dropping the
// rest of the cluster: huggingface/tokenizers #2116); otherwise each character is looked up on
// its own.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/text/hf_json.h"
#include "engine/text/hf_normalizers.h"

namespace engine::hf {

class PrecompiledCharsmap {
 public:
  // `binary` is the decoded charsmap; throws std::invalid_argument when it is malformed.
  explicit PrecompiledCharsmap(std::string_view binary);

  // The replacement of the shortest prefix of `chunk` in the trie, if any.
  std::optional<std::string_view> transform(std::string_view chunk) const;
  void normalize(std::string& text) const;

 private:
  std::vector<uint32_t> units_;
  std::string pool_;
};

std::unique_ptr<Normalizer> make_precompiled_normalizer(const JsonSite& site);

// RFC 4648 base64 (padding optional); throws std::invalid_argument on other characters.
std::string decode_base64(std::string_view text);

}  // namespace engine::hf
