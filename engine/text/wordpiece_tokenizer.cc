#include "engine/text/wordpiece_tokenizer.h"

#include <utf8proc.h>

#include <fstream>
#include <memory>

#include "engine/common/error.h"

namespace engine {
namespace {

constexpr size_t kMaxWordCharacters = 100;

std::u32string from_utf8(std::string_view text) {
  std::u32string result;
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  auto remaining = static_cast<utf8proc_ssize_t>(text.size());
  while (remaining > 0) {
    utf8proc_int32_t code = 0;
    utf8proc_ssize_t used = utf8proc_iterate(bytes, remaining, &code);
    if (used <= 0) {  // not UTF-8: skip the byte, as U+FFFD would be dropped below anyway
      used = 1;
      code = 0xFFFD;
    }
    result.push_back(static_cast<char32_t>(code));
    bytes += used;
    remaining -= used;
  }
  return result;
}

std::string to_utf8(const std::u32string& text) {
  std::string result;
  utf8proc_uint8_t buffer[4];
  for (char32_t code : text) {
    const auto length = utf8proc_encode_char(static_cast<utf8proc_int32_t>(code), buffer);
    result.append(reinterpret_cast<const char*>(buffer), static_cast<size_t>(length));
  }
  return result;
}

// NFC or NFD through utf8proc.
std::u32string normalize(const std::u32string& text, utf8proc_option_t form) {
  const std::string bytes = to_utf8(text);
  utf8proc_uint8_t* mapped = nullptr;
  const auto length = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(bytes.data()),
                                   static_cast<utf8proc_ssize_t>(bytes.size()), &mapped,
                                   static_cast<utf8proc_option_t>(form | UTF8PROC_STABLE));
  if (length < 0) return text;
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(mapped, &std::free);
  return from_utf8(std::string_view(reinterpret_cast<const char*>(mapped), static_cast<size_t>(length)));
}

utf8proc_category_t category(char32_t code) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(code));
}

bool is_whitespace(char32_t code) {
  return code == ' ' || code == '\t' || code == '\n' || code == '\r' ||
         category(code) == UTF8PROC_CATEGORY_ZS;
}

// Every "C" category: control, format, surrogate, private use and unassigned.
bool is_control(char32_t code) {
  if (code == '\t' || code == '\n' || code == '\r') return false;
  const auto kind = category(code);
  return kind == UTF8PROC_CATEGORY_CN || kind >= UTF8PROC_CATEGORY_CC;
}

// Python's str.split() also splits on the line and paragraph separators, which survive cleaning.
bool splits_words(char32_t code) { return code == ' ' || code == 0x2028 || code == 0x2029; }

bool is_punctuation(char32_t code) {
  if ((code >= 33 && code <= 47) || (code >= 58 && code <= 64) || (code >= 91 && code <= 96) ||
      (code >= 123 && code <= 126)) {
    return true;
  }
  const auto kind = category(code);
  return kind >= UTF8PROC_CATEGORY_PC && kind <= UTF8PROC_CATEGORY_PO;
}

bool is_chinese(char32_t code) {
  return (code >= 0x4E00 && code <= 0x9FFF) || (code >= 0x3400 && code <= 0x4DBF) ||
         (code >= 0x20000 && code <= 0x2A6DF) || (code >= 0x2A700 && code <= 0x2B73F) ||
         (code >= 0x2B740 && code <= 0x2B81F) || (code >= 0x2B820 && code <= 0x2CEAF) ||
         (code >= 0xF900 && code <= 0xFAFF) || (code >= 0x2F800 && code <= 0x2FA1F);
}

// Python's per-character str.lower(): the simple mapping, except U+0130 (İ), whose full
// lowercase is i followed by a combining dot above.
void append_lowercase(char32_t code, std::u32string& out) {
  if (code == 0x130) {
    out += U"i\u0307";
    return;
  }
  out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(code))));
}

std::vector<std::u32string> split_words(const std::u32string& text) {
  std::vector<std::u32string> words;
  std::u32string word;
  for (char32_t code : text) {
    if (splits_words(code)) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word.push_back(code);
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(const std::string& vocab_file,
                                       const WordPieceOptions& options)
    : options_(options) {
  std::ifstream stream(vocab_file);
  check<ConfigError>(stream.good(), "WordPiece vocabulary '{}' cannot be read", vocab_file);
  for (std::string line; std::getline(stream, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    // transformers keeps the first id of a repeated piece.
    vocabulary_.emplace(line, static_cast<int64_t>(pieces_.size()));
    pieces_.push_back(line);
  }
  const auto id_of = [&](const char* piece) {
    auto found = vocabulary_.find(piece);
    check<ConfigError>(found != vocabulary_.end(), "WordPiece vocabulary '{}' has no {}",
                       vocab_file, piece);
    return found->second;
  };
  cls_ = id_of("[CLS]");
  sep_ = id_of("[SEP]");
  special_ = SpecialTokenIds{cls_, sep_, id_of("[PAD]"), id_of("[UNK]"), id_of("[MASK]")};
}

std::vector<std::u32string> WordPieceTokenizer::basic_tokens(std::string_view text) const {
  std::u32string cleaned;
  for (char32_t code : from_utf8(text)) {
    if (code == 0 || code == 0xFFFD || is_control(code)) continue;
    if (is_whitespace(code)) {
      cleaned.push_back(' ');
    } else if (options_.tokenize_chinese_chars && is_chinese(code)) {
      cleaned += U' ';
      cleaned.push_back(code);
      cleaned += U' ';
    } else if (options_.lowercase) {
      append_lowercase(code, cleaned);
    } else {
      cleaned.push_back(code);
    }
  }
  const bool strip = options_.strip_accents == 1 || (options_.strip_accents == -1 && options_.lowercase);
  std::vector<std::u32string> words;
  for (std::u32string& word : split_words(normalize(cleaned, UTF8PROC_COMPOSE))) {
    if (strip) {
      std::u32string kept;
      for (char32_t code : normalize(word, UTF8PROC_DECOMPOSE)) {
        if (category(code) != UTF8PROC_CATEGORY_MN) kept.push_back(code);
      }
      word = std::move(kept);
    }
    std::u32string current;
    for (char32_t code : word) {
      if (is_punctuation(code)) {
        if (!current.empty()) words.push_back(std::move(current));
        current.clear();
        words.emplace_back(1, code);
      } else {
        current.push_back(code);
      }
    }
    if (!current.empty()) words.push_back(std::move(current));
  }
  return words;
}

void WordPieceTokenizer::word_pieces(const std::u32string& word, std::vector<int64_t>& ids) const {
  if (word.size() > kMaxWordCharacters) {
    ids.push_back(special_.unk);
    return;
  }
  std::vector<int64_t> pieces;
  for (size_t start = 0; start < word.size();) {
    size_t end = word.size();
    int64_t found_id = -1;
    for (; end > start; --end) {
      std::string piece = (start > 0 ? "##" : "") + to_utf8(word.substr(start, end - start));
      auto found = vocabulary_.find(piece);
      if (found != vocabulary_.end()) {
        found_id = found->second;
        break;
      }
    }
    if (found_id < 0) {
      ids.push_back(special_.unk);
      return;
    }
    pieces.push_back(found_id);
    start = end;
  }
  ids.insert(ids.end(), pieces.begin(), pieces.end());
}

std::vector<int64_t> WordPieceTokenizer::encode_all(std::string_view text) const {
  std::vector<int64_t> ids;
  for (const std::u32string& word : basic_tokens(text)) word_pieces(word, ids);
  return ids;
}

Encoding WordPieceTokenizer::build_single(const std::vector<int64_t>& ids) const {
  Encoding encoding;
  encoding.ids.reserve(ids.size() + 2);
  encoding.ids.push_back(cls_);
  encoding.ids.insert(encoding.ids.end(), ids.begin(), ids.end());
  encoding.ids.push_back(sep_);
  encoding.type_ids.assign(encoding.ids.size(), 0);
  return encoding;
}

Encoding WordPieceTokenizer::build_pair(const std::vector<int64_t>& first,
                                        const std::vector<int64_t>& second) const {
  Encoding encoding = build_single(first);
  encoding.ids.insert(encoding.ids.end(), second.begin(), second.end());
  encoding.ids.push_back(sep_);
  encoding.type_ids.resize(encoding.ids.size(), 1);
  return encoding;
}

std::string WordPieceTokenizer::id_to_piece(int64_t id) const {
  check<RecordError>(id >= 0 && id < vocab_size(), "token id {} is outside the vocabulary of {}",
                     id, vocab_size());
  return pieces_[static_cast<size_t>(id)];
}

}  // namespace engine
