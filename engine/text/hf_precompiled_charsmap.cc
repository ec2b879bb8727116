#include "engine/text/hf_precompiled_charsmap.h"

#include <stdexcept>

#include "engine/text/hf_unicode.h"

namespace engine::hf {
namespace {

uint32_t read_le32(std::string_view bytes, size_t at) {
  uint32_t value = 0;
  for (size_t k = 0; k < 4; ++k) {
    value |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[at + k])) << (8 * k);
  }
  return value;
}

// darts-clone unit fields.
size_t unit_offset(uint32_t unit) { return (unit >> 10) << ((unit & (1u << 9)) >> 6); }
uint32_t unit_label(uint32_t unit) { return unit & ((1u << 31) | 0xFF); }
bool unit_has_leaf(uint32_t unit) { return ((unit >> 8) & 1) == 1; }
uint32_t unit_value(uint32_t unit) { return unit & ((1u << 31) - 1); }

class Precompiled : public Normalizer {
 public:
  explicit Precompiled(std::string_view binary) : charsmap_(binary) {}
  void normalize(std::string& text) const override { charsmap_.normalize(text); }

 private:
  PrecompiledCharsmap charsmap_;
};

}  // namespace

std::string decode_base64(std::string_view text) {
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int value = -1;
    if (c >= 'A' && c <= 'Z') value = c - 'A';
    if (c >= 'a' && c <= 'z') value = c - 'a' + 26;
    if (c >= '0' && c <= '9') value = c - '0' + 52;
    if (c == '+') value = 62;
    if (c == '/') value = 63;
    if (c == '=') break;
    if (value < 0) throw std::invalid_argument("not base64");
    buffer = (buffer << 6) | static_cast<uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
    }
  }
  return out;
}

PrecompiledCharsmap::PrecompiledCharsmap(std::string_view binary) {
  if (binary.size() < 4) throw std::invalid_argument("the charsmap is shorter than 4 bytes");
  const uint32_t trie_bytes = read_le32(binary, 0);
  if (trie_bytes % 4 != 0 || trie_bytes > binary.size() - 4 || trie_bytes == 0) {
    throw std::invalid_argument("the charsmap's trie size does not fit the data");
  }
  units_.resize(trie_bytes / 4);
  for (size_t i = 0; i < units_.size(); ++i) units_[i] = read_le32(binary, 4 + 4 * i);
  pool_ = std::string(binary.substr(4 + trie_bytes));
}

std::optional<std::string_view> PrecompiledCharsmap::transform(std::string_view chunk) const {
  size_t position = unit_offset(units_[0]);
  for (char byte : chunk) {
    const auto label = static_cast<unsigned char>(byte);
    if (label == 0) break;
    position ^= label;
    if (position >= units_.size()) return std::nullopt;
    const uint32_t unit = units_[position];
    if (unit_label(unit) != label) return std::nullopt;
    position ^= unit_offset(unit);
    if (unit_has_leaf(unit)) {
      if (position >= units_.size()) return std::nullopt;
      const size_t start = unit_value(units_[position]);
      if (start >= pool_.size()) return std::nullopt;
      const size_t end = pool_.find('\0', start);
      return std::string_view(pool_).substr(start, end == std::string::npos ? end : end - start);
    }
  }
  return std::nullopt;
}

void PrecompiledCharsmap::normalize(std::string& text) const {
  std::string out;
  out.reserve(text.size());
  bool modified = false;
  size_t start = 0;
  for (size_t end : grapheme_ends(text)) {
    const std::string_view grapheme = std::string_view(text).substr(start, end - start);
    start = end;
    if (grapheme.size() < 6) {
      if (auto replacement = transform(grapheme)) {
        out += *replacement;
        modified = true;
        continue;
      }
    }
    for (size_t i = 0; i < grapheme.size();) {
      const size_t length = utf8_length(static_cast<unsigned char>(grapheme[i]));
      const std::string_view character = grapheme.substr(i, length);
      if (auto replacement = transform(character)) {
        out += *replacement;
        modified = true;
      } else {
        out += character;
      }
      i += length;
    }
  }
  if (modified) text = std::move(out);
}

std::unique_ptr<Normalizer> make_precompiled_normalizer(const JsonSite& site) {
  if (!site.has("precompiled_charsmap")) return nullptr;
  const std::string encoded = site.get_string("precompiled_charsmap");
  if (encoded.empty()) return nullptr;
  try {
    return std::make_unique<Precompiled>(decode_base64(encoded));
  } catch (const std::invalid_argument& error) {
    site.fail(std::string("precompiled_charsmap is malformed: ") + error.what());
  }
}

}  // namespace engine::hf
