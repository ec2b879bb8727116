#include "engine/text/hf_normalizers.h"

#include <vector>

#include "engine/text/hf_byte_level.h"
#include "engine/text/hf_precompiled_charsmap.h"
#include "engine/text/hf_split.h"
#include "engine/text/hf_unicode.h"

namespace engine::hf {
namespace {

bool is_ascii(const std::string& text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// Clean-up (control characters dropped, whitespace to a space), a space on each side of every
// CJK ideograph, accents stripped (NFD, then category Mn dropped) and lower case, in that order.
class BertNormalizer : public Normalizer {
 public:
  explicit BertNormalizer(const JsonSite& site)
      : clean_text_(site.get_bool("clean_text", true)),
        chinese_chars_(site.get_bool("handle_chinese_chars", true)),
        lowercase_(site.get_bool("lowercase", true)),
        strip_accents_(site.get_bool("strip_accents", lowercase_)) {}

  void normalize(std::string& text) const override {
    std::u32string codes = decode_utf8(text);
    std::u32string out;
    out.reserve(codes.size());
    for (char32_t code : codes) {
      if (clean_text_ && is_bert_removed(code)) continue;
      if (clean_text_ && is_bert_whitespace(code)) code = ' ';
      if (chinese_chars_ && is_chinese_character(code)) {
        out.push_back(' ');
        out.push_back(code);
        out.push_back(' ');
      } else {
        out.push_back(code);
      }
    }
    if (strip_accents_) {
      codes = hf::normalize(out, NormalForm::kNfd);
      out.clear();
      for (char32_t code : codes) {
        if (!is_nonspacing_mark(code)) out.push_back(code);
      }
    }
    if (lowercase_) {
      codes.clear();
      for (char32_t code : out) append_lowercase(code, codes);
      out.swap(codes);
    }
    text = encode_utf8(out);
  }

 private:
  bool clean_text_;
  bool chinese_chars_;
  bool lowercase_;
  bool strip_accents_;
};

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  void normalize(std::string& text) const override {
    if (!is_ascii(text)) text = encode_utf8(hf::normalize(decode_utf8(text), form_));
  }

 private:
  NormalForm form_;
};

class Lowercase : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    if (is_ascii(text)) {
      for (char& c : text) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      }
      return;
    }
    std::u32string out;
    for (char32_t code : decode_utf8(text)) append_lowercase(code, out);
    text = encode_utf8(out);
  }
};

// Whitespace (Rust's char::is_whitespace) off the left and/or right end.
class Strip : public Normalizer {
 public:
  explicit Strip(const JsonSite& site)
      : left_(site.get_bool("strip_left", true)), right_(site.get_bool("strip_right", true)) {}

  void normalize(std::string& text) const override {
    const std::u32string codes = decode_utf8(text);
    size_t begin = 0, end = codes.size();
    while (left_ && begin < end && is_whitespace(codes[begin])) ++begin;
    while (right_ && end > begin && is_whitespace(codes[end - 1])) --end;
    if (begin > 0 || end < codes.size()) {
      text = encode_utf8(std::u32string_view(codes).substr(begin, end - begin));
    }
  }

 private:
  bool left_;
  bool right_;
};

// Drops every combining mark (categories Mn, Mc, Me); usually after NFD or NFKD.
class StripAccents : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    if (is_ascii(text)) return;
    std::u32string out;
    for (char32_t code : decode_utf8(text)) {
      if (!is_combining_mark(code)) out.push_back(code);
    }
    text = encode_utf8(out);
  }
};

class Replace : public Normalizer {
 public:
  explicit Replace(const JsonSite& site)
      : pattern_(site.at("pattern")), content_(site.get_string("content")) {}

  void normalize(std::string& text) const override {
    std::string out;
    out.reserve(text.size());
    for (const Segment& segment : pattern_.partition(text)) {
      if (segment.is_match) {
        out += content_;
      } else {
        out.append(text, segment.start, segment.end - segment.start);
      }
    }
    text = std::move(out);
  }

 private:
  SplitPattern pattern_;
  std::string content_;
};

class Prepend : public Normalizer {
 public:
  explicit Prepend(const JsonSite& site) : prepend_(site.get_string("prepend")) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prepend_);
  }

 private:
  std::string prepend_;
};

// sentencepiece's nmt_nfkc clean-up without the NFKC: some controls dropped, some spaces unified.
class Nmt : public Normalizer {
 public:
  void normalize(std::string& text) const override {
    std::u32string out;
    for (char32_t code : decode_utf8(text)) {
      if ((code >= 0x01 && code <= 0x08) || code == 0x0B || (code >= 0x0E && code <= 0x1F) ||
          code == 0x7F || code == 0x8F || code == 0x9F) {
        continue;
      }
      const bool space = code == 0x09 || code == 0x0A || code == 0x0C || code == 0x0D ||
                         code == 0x1680 || (code >= 0x200B && code <= 0x200F) || code == 0x2028 ||
                         code == 0x2029 || code == 0x2581 || code == 0xFEFF || code == 0xFFFD;
      out.push_back(space ? U' ' : code);
    }
    text = encode_utf8(out);
  }
};

class ByteLevelNormalizer : public Normalizer {
 public:
  void normalize(std::string& text) const override { text = byte_level_encode(text); }
};

class Sequence : public Normalizer {
 public:
  explicit Sequence(const JsonSite& site) {
    const JsonSite list = site.at("normalizers");
    list.expect(list.node().is_array(), "an array of normalizers");
    for (size_t i = 0; i < list.node().size(); ++i) {
      if (auto normalizer = make_normalizer(list.element(i))) {
        normalizers_.push_back(std::move(normalizer));
      }
    }
  }

  void normalize(std::string& text) const override {
    for (const auto& normalizer : normalizers_) normalizer->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> normalizers_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const JsonSite& site) {
  if (site.node().is_null()) return nullptr;
  const std::string type =
      site.type("normalizer", {"BertNormalizer", "NFC", "NFD", "NFKC", "NFKD", "Lowercase", "Strip",
                               "StripAccents", "Replace", "Prepend", "Precompiled", "Nmt",
                               "ByteLevel", "Sequence"});
  if (type == "BertNormalizer") return std::make_unique<BertNormalizer>(site);
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalForm::kNfc);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalForm::kNfd);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalForm::kNfkc);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalForm::kNfkd);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "Strip") return std::make_unique<Strip>(site);
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "Replace") return std::make_unique<Replace>(site);
  if (type == "Prepend") return std::make_unique<Prepend>(site);
  if (type == "Precompiled") return make_precompiled_normalizer(site);
  if (type == "Nmt") return std::make_unique<Nmt>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  return std::make_unique<Sequence>(site);
}

}  // namespace engine::hf
