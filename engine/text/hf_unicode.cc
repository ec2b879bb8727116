#include "engine/text/hf_unicode.h"

#include <utf8proc.h>

#include <algorithm>

#include "engine/text/hf_unicode_tables.h"
#include "engine/text/utf8.h"

namespace engine::hf {

bool RangeTable::contains(char32_t code) const {
  const CodeRange* end = ranges + size;
  const CodeRange* found =
      std::upper_bound(ranges, end, code,
                       [](char32_t value, const CodeRange& range) { return value < range.first; });
  return found != ranges && code <= (found - 1)->last;
}

char32_t LowercaseTable::map(char32_t code) const {
  const LowercaseRun* end = runs + size;
  const LowercaseRun* found = std::upper_bound(
      runs, end, code, [](char32_t value, const LowercaseRun& run) { return value < run.first; });
  if (found == runs) return code;
  const LowercaseRun& run = *(found - 1);
  if (code > run.last || (code - run.first) % static_cast<char32_t>(run.stride) != 0) return code;
  return static_cast<char32_t>(static_cast<int32_t>(code) + run.delta);
}

size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead < 0xE0) return 2;
  if (lead < 0xF0) return 3;
  return 4;
}

char32_t decode_at(std::string_view text, size_t at) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const unsigned char lead = bytes[at];
  const size_t length = utf8_length(lead);
  if (length == 1) return lead;
  char32_t code = lead & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07);
  for (size_t k = 1; k < length && at + k < text.size(); ++k) {
    code = (code << 6) | (bytes[at + k] & 0x3F);
  }
  return code;
}

std::u32string decode_utf8(std::string_view text) {
  std::u32string result;
  result.reserve(text.size());
  for (size_t i = 0; i < text.size(); i += utf8_length(static_cast<unsigned char>(text[i]))) {
    result.push_back(decode_at(text, i));
  }
  return result;
}

void append_utf8(char32_t code, std::string& out) {
  if (code < 0x80) {
    out.push_back(static_cast<char>(code));
  } else if (code < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code >> 6)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  } else if (code < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (code >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (code >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code & 0x3F)));
  }
}

std::string encode_utf8(std::u32string_view text) {
  std::string result;
  result.reserve(text.size());
  for (char32_t code : text) append_utf8(code, result);
  return result;
}

std::string sanitize_utf8(std::string_view text) {
  if (find_invalid_utf8(text) == std::string::npos) return std::string(text);
  // Each maximal ill-formed subpart becomes one U+FFFD, as Python's "replace" decoding does.
  std::string result;
  result.reserve(text.size() + 8);
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    const unsigned char lead = bytes[i];
    size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // range of the second byte
    if (lead < 0x80) {
      length = 1;
    } else if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      low = lead == 0xE0 ? 0xA0 : 0x80;
      high = lead == 0xED ? 0x9F : 0xBF;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      low = lead == 0xF0 ? 0x90 : 0x80;
      high = lead == 0xF4 ? 0x8F : 0xBF;
    }
    size_t good = length == 0 ? 0 : 1;  // bytes of the character that are well formed
    while (good > 0 && good < length && i + good < text.size()) {
      const unsigned char next = bytes[i + good];
      const bool fits = good == 1 ? next >= low && next <= high : (next & 0xC0) == 0x80;
      if (!fits) break;
      ++good;
    }
    if (length > 0 && good == length) {
      result.append(text.substr(i, length));
      i += length;
    } else {
      result += "\xEF\xBF\xBD";
      i += std::max<size_t>(good, 1);
    }
  }
  return result;
}

bool is_whitespace(char32_t code) {
  return (code >= 0x09 && code <= 0x0D) || code == 0x20 || code == 0x85 || code == 0xA0 ||
         code == 0x1680 || (code >= 0x2000 && code <= 0x200A) || code == 0x2028 || code == 0x2029 ||
         code == 0x202F || code == 0x205F || code == 0x3000;
}

bool is_bert_removed(char32_t code) { return kBertRemoved.contains(code); }

bool is_bert_whitespace(char32_t code) {
  return code == '\t' || code == '\n' || code == '\r' ||
         (is_whitespace(code) && !is_bert_removed(code));
}

bool is_bert_punctuation(char32_t code) { return kBertPunctuation.contains(code); }

bool is_chinese_character(char32_t code) {
  return (code >= 0x4E00 && code <= 0x9FFF) || (code >= 0x3400 && code <= 0x4DBF) ||
         (code >= 0x20000 && code <= 0x2A6DF) || (code >= 0x2A700 && code <= 0x2B73F) ||
         (code >= 0x2B740 && code <= 0x2B81F) || (code >= 0x2B920 && code <= 0x2CEAF) ||
         (code >= 0xF900 && code <= 0xFAFF) || (code >= 0x2F800 && code <= 0x2FA1F);
}

bool is_numeric(char32_t code) { return kNumeric.contains(code); }
bool is_word_character(char32_t code) { return kWord.contains(code); }
bool is_combining_mark(char32_t code) { return kCombiningMark.contains(code); }
bool is_nonspacing_mark(char32_t code) { return kNonspacingMark.contains(code); }

void append_lowercase(char32_t code, std::u32string& out) {
  if (code == 0x130) {  // İ: the one character whose lower case is two (i + U+0307)
    out.push_back('i');
    out.push_back(0x307);
    return;
  }
  out.push_back(code < 0x80 ? (code >= 'A' && code <= 'Z' ? code + 32 : code)
                            : kLowercaseRuns.map(code));
}

namespace {

int combining_class(char32_t code) {
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(code))->combining_class;
}

// Full decomposition of every character tokenizers can decompose, then the canonical order.
std::vector<utf8proc_int32_t> decompose(std::u32string_view text, bool compatibility) {
  const RangeTable& decomposable =
      compatibility ? kCompatibilityDecomposition : kCanonicalDecomposition;
  const auto options =
      static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | (compatibility ? UTF8PROC_COMPAT : 0));
  std::vector<utf8proc_int32_t> result;
  result.reserve(text.size() + 8);
  utf8proc_int32_t buffer[32];
  for (char32_t code : text) {
    const auto value = static_cast<utf8proc_int32_t>(code);
    if (code < 0xC0 && !compatibility) {
      result.push_back(value);
      continue;
    }
    if (!decomposable.contains(code)) {
      result.push_back(value);
      continue;
    }
    int boundclass = 0;
    const utf8proc_ssize_t length =
        utf8proc_decompose_char(value, buffer, 32, options, &boundclass);
    if (length <= 0 || length > 32) {
      result.push_back(value);
      continue;
    }
    result.insert(result.end(), buffer, buffer + length);
  }
  // Canonical ordering: each run of non-starters sorted by combining class, stably.
  for (size_t i = 0; i < result.size();) {
    if (combining_class(static_cast<char32_t>(result[i])) == 0) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < result.size() && combining_class(static_cast<char32_t>(result[end])) != 0) ++end;
    std::stable_sort(result.begin() + static_cast<std::ptrdiff_t>(i),
                     result.begin() + static_cast<std::ptrdiff_t>(end),
                     [](utf8proc_int32_t a, utf8proc_int32_t b) {
                       return combining_class(static_cast<char32_t>(a)) <
                              combining_class(static_cast<char32_t>(b));
                     });
    i = end;
  }
  return result;
}

}  // namespace

std::u32string normalize(std::u32string_view text, NormalForm form) {
  const bool ascii =
      std::all_of(text.begin(), text.end(), [](char32_t code) { return code < 0x80; });
  if (ascii) return std::u32string(text);
  const bool compatibility = form == NormalForm::kNfkc || form == NormalForm::kNfkd;
  std::vector<utf8proc_int32_t> decomposed = decompose(text, compatibility);
  auto length = static_cast<utf8proc_ssize_t>(decomposed.size());
  if (form == NormalForm::kNfc || form == NormalForm::kNfkc) {
    length = utf8proc_normalize_utf32(
        decomposed.data(), length,
        static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE | UTF8PROC_STABLE));
  }
  std::u32string result;
  result.reserve(static_cast<size_t>(length));
  for (utf8proc_ssize_t i = 0; i < length; ++i)
    result.push_back(static_cast<char32_t>(decomposed[i]));
  return result;
}

std::vector<size_t> grapheme_ends(std::string_view text) {
  std::vector<size_t> ends;
  utf8proc_int32_t state = 0;
  utf8proc_int32_t previous = -1;
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t i = 0; i < text.size();) {
    const size_t length = utf8_length(bytes[i]);
    utf8proc_int32_t code = 0;
    utf8proc_iterate(bytes + i, static_cast<utf8proc_ssize_t>(length), &code);
    if (previous >= 0 && utf8proc_grapheme_break_stateful(previous, code, &state))
      ends.push_back(i);
    previous = code;
    i += length;
  }
  if (!text.empty()) ends.push_back(text.size());
  return ends;
}

}  // namespace engine::hf
