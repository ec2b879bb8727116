#include "engine/text/hf_byte_level.h"

#include <array>

#include "engine/text/hf_unicode.h"

namespace engine::hf {
namespace {

// Printable Latin-1 bytes stand for themselves; the others, in order, for U+0100 onwards.
std::array<std::string, 256> make_alphabet() {
  std::array<std::string, 256> alphabet;
  char32_t next = 256;
  for (int byte = 0; byte < 256; ++byte) {
    const bool printable =
        (byte >= '!' && byte <= '~') || (byte >= 0xA1 && byte <= 0xAC) || (byte >= 0xAE);
    append_utf8(printable ? static_cast<char32_t>(byte) : next++,
                alphabet[static_cast<size_t>(byte)]);
  }
  return alphabet;
}

}  // namespace

std::string byte_level_encode(std::string_view text) {
  static const std::array<std::string, 256> alphabet = make_alphabet();
  std::string out;
  out.reserve(text.size() * 2);
  for (char c : text) out += alphabet[static_cast<unsigned char>(c)];
  return out;
}

}  // namespace engine::hf
