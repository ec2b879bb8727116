// GPT-2's byte-level alphabet: every byte as a printable character (bytes_to_unicode), used by
// the ByteLevel pre-tokenizer and normalizer.
#pragma once

#include <string>
#include <string_view>

namespace engine::hf {

// Each byte of `text` replaced by its byte-level character, in UTF-8.
std::string byte_level_encode(std::string_view text);

}  // namespace engine::hf
