// Regular expressions as tokenizers runs them: Oniguruma (the onig crate), Ruby syntax, UTF-8.
// The pre-tokenizer patterns of GPT-2, Llama 3 and Qwen use \p{L}, \p{N}, (?i:...), (?!\S) and
// {1,3}, which Oniguruma reads exactly as tokenizers does.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engine::hf {

// `pattern` with the characters Unicode 15 and 16 added to each general category (\p{L}, \p{Lu},
// \p{N}, ...) and to \w and \d written into it, so that Debian's Oniguruma 6.9.8 (Unicode 14)
// matches as tokenizers' (Unicode 16) does. Scripts (\p{Han}) and binary properties are left.
std::string add_unicode_16_characters(std::string_view pattern);

class Regex {
 public:
  // Throws std::invalid_argument with Oniguruma's message when `pattern` does not compile.
  explicit Regex(std::string_view pattern);  // through add_unicode_16_characters
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Byte ranges of the non-overlapping matches, left to right, as the onig crate's find_iter
  // (an empty match right where the previous match ended is skipped).
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;

 private:
  void* regex_;  // OnigRegex, kept out of this header
};

}  // namespace engine::hf
