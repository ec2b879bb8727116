#include "engine/text/hf_pre_tokenizers.h"

#include "engine/text/hf_byte_level.h"
#include "engine/text/hf_regex.h"
#include "engine/text/hf_split.h"
#include "engine/text/hf_unicode.h"

namespace engine::hf {
namespace {

// Cuts every word by `partition_of(text)` and `behavior`, as PreTokenizedString::split does.
template <typename PartitionOf>
void split_each(std::vector<PreToken>& words, PartitionOf partition_of, SplitBehavior behavior) {
  std::vector<PreToken> result;
  result.reserve(words.size());
  for (PreToken& word : words) {
    for (const auto& [start, end] : split_pieces(partition_of(word.text), behavior)) {
      if (start == end) continue;
      if (start == 0 && end == word.text.size()) {
        result.push_back(std::move(word));
        break;
      }
      result.push_back({word.text.substr(start, end - start), word.at_start && start == 0});
    }
  }
  words = std::move(result);
}

template <typename Predicate>
auto by_chars(Predicate predicate) {
  return [predicate](const std::string& text) { return partition_chars(text, predicate); };
}

class BertPreTokenizer : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<PreToken>& words) const override {
    split_each(words, by_chars(is_whitespace), SplitBehavior::kRemoved);
    split_each(words, by_chars(is_bert_punctuation), SplitBehavior::kIsolated);
  }
};

// The regex \w+|[^\w\s]+ (the regex crate's classes): runs of word characters and runs of other
// characters that are not whitespace; whitespace is dropped.
class Whitespace : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<PreToken>& words) const override {
    split_each(words, runs, SplitBehavior::kRemoved);
  }

 private:
  static Partition runs(const std::string& text) {
    Partition partition;
    int previous_kind = -1;  // 0 whitespace, 1 word, 2 other
    for (size_t i = 0; i < text.size(); i += utf8_length(static_cast<unsigned char>(text[i]))) {
      const char32_t code = decode_at(text, i);
      const int kind = is_word_character(code) ? 1 : is_whitespace(code) ? 0 : 2;
      if (kind == previous_kind) {
        partition.back().end = i + utf8_length(static_cast<unsigned char>(text[i]));
      } else {
        partition.push_back({i, i + utf8_length(static_cast<unsigned char>(text[i])), kind == 0});
      }
      previous_kind = kind;
    }
    return partition;
  }
};

class WhitespaceSplit : public PreTokenizer {
 public:
  void pre_tokenize(std::vector<PreToken>& words) const override {
    split_each(words, by_chars(is_whitespace), SplitBehavior::kRemoved);
  }
};

// GPT-2's byte-level pre-tokenizer: an optional space in front, GPT-2's regex, then every byte
// as its byte-level character.
class ByteLevel : public PreTokenizer {
 public:
  explicit ByteLevel(const JsonSite& site)
      : add_prefix_space_(site.get_bool("add_prefix_space", true)),
        use_regex_(site.get_bool("use_regex", true)) {}

  void pre_tokenize(std::vector<PreToken>& words) const override {
    static const Regex gpt2(
        R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
    if (add_prefix_space_) {
      // tokenizers' prepend does nothing to an empty string.
      for (PreToken& word : words) {
        if (!word.text.empty() && word.text[0] != ' ') word.text.insert(0, " ");
      }
    }
    if (use_regex_) {
      split_each(
          words, [](const std::string& text) { return partition_regex(gpt2, text); },
          SplitBehavior::kIsolated);
    }
    for (PreToken& word : words) word.text = byte_level_encode(word.text);
  }

 private:
  bool add_prefix_space_;
  bool use_regex_;
};

// Spaces become the replacement character (U+2581), one is put in front (always, for the first
// word of the text only, or never) and words are cut in front of each replacement character.
class Metaspace : public PreTokenizer {
 public:
  explicit Metaspace(const JsonSite& site) : replacement_(site.get_string("replacement")) {
    if (decode_utf8(replacement_).size() != 1) {
      site.at("replacement").fail("expected a single character");
    }
    replacement_code_ = decode_utf8(replacement_)[0];
    split_ = site.get_bool("split", true);
    if (site.has("prepend_scheme")) {
      const JsonSite scheme = site.at("prepend_scheme");
      const std::string name = site.get_string("prepend_scheme");
      if (name != "always" && name != "first" && name != "never") {
        scheme.fail("prepend_scheme '" + name +
                    "' is not supported; supported: always, first, never");
      }
      prepend_ = name == "never"   ? Prepend::kNever
                 : name == "first" ? Prepend::kFirst
                                   : Prepend::kAlways;
    } else {
      prepend_ = site.get_bool("add_prefix_space", true) ? Prepend::kAlways : Prepend::kNever;
    }
  }

  void pre_tokenize(std::vector<PreToken>& words) const override {
    for (PreToken& word : words) {
      std::string replaced;
      replaced.reserve(word.text.size() + replacement_.size());
      for (char c : word.text) {
        if (c == ' ') {
          replaced += replacement_;
        } else {
          replaced.push_back(c);
        }
      }
      const bool starts = replaced.compare(0, replacement_.size(), replacement_) == 0;
      // tokenizers' prepend does nothing to an empty string.
      if (!starts && !replaced.empty() &&
          (prepend_ == Prepend::kAlways || (prepend_ == Prepend::kFirst && word.at_start))) {
        replaced.insert(0, replacement_);
      }
      word.text = std::move(replaced);
    }
    if (split_) {
      const char32_t code = replacement_code_;
      split_each(words, by_chars([code](char32_t c) { return c == code; }),
                 SplitBehavior::kMergedWithNext);
    }
  }

 private:
  enum class Prepend { kAlways, kFirst, kNever };
  std::string replacement_;
  char32_t replacement_code_ = 0;
  Prepend prepend_ = Prepend::kAlways;
  bool split_ = true;
};

class Split : public PreTokenizer {
 public:
  explicit Split(const JsonSite& site)
      : pattern_(site.at("pattern")),
        behavior_(parse_split_behavior(site.at("behavior"))),
        invert_(site.get_bool("invert", false)) {}

  void pre_tokenize(std::vector<PreToken>& words) const override {
    split_each(
        words,
        [this](const std::string& text) {
          Partition partition = pattern_.partition(text);
          if (invert_) invert(partition);
          return partition;
        },
        behavior_);
  }

 private:
  SplitPattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class Digits : public PreTokenizer {
 public:
  explicit Digits(const JsonSite& site) : individual_(site.get_bool("individual_digits", false)) {}
  void pre_tokenize(std::vector<PreToken>& words) const override {
    split_each(words, by_chars(is_numeric),
               individual_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
  }

 private:
  bool individual_;
};

class Punctuation : public PreTokenizer {
 public:
  explicit Punctuation(const JsonSite& site)
      : behavior_(site.has("behavior") ? parse_split_behavior(site.at("behavior"))
                                       : SplitBehavior::kIsolated) {}
  void pre_tokenize(std::vector<PreToken>& words) const override {
    split_each(words, by_chars(is_bert_punctuation), behavior_);
  }

 private:
  SplitBehavior behavior_;
};

class CharDelimiterSplit : public PreTokenizer {
 public:
  explicit CharDelimiterSplit(const JsonSite& site) {
    const std::u32string delimiter = decode_utf8(site.get_string("delimiter"));
    if (delimiter.size() != 1) site.at("delimiter").fail("expected a single character");
    delimiter_ = delimiter[0];
  }
  void pre_tokenize(std::vector<PreToken>& words) const override {
    const char32_t delimiter = delimiter_;
    split_each(words, by_chars([delimiter](char32_t c) { return c == delimiter; }),
               SplitBehavior::kRemoved);
  }

 private:
  char32_t delimiter_ = 0;
};

// Words of `length` characters (the last one shorter).
class FixedLength : public PreTokenizer {
 public:
  explicit FixedLength(const JsonSite& site)
      : length_(site.has("length") ? static_cast<size_t>(site.get_int("length")) : 5) {
    if (length_ == 0) site.at("length").fail("expected a length of at least 1");
  }
  void pre_tokenize(std::vector<PreToken>& words) const override {
    std::vector<PreToken> result;
    for (const PreToken& word : words) {
      size_t start = 0, characters = 0;
      for (size_t i = 0; i <= word.text.size();) {
        if (characters == length_ || (i == word.text.size() && i > start)) {
          result.push_back({word.text.substr(start, i - start), word.at_start && start == 0});
          start = i;
          characters = 0;
        }
        if (i == word.text.size()) break;
        i += utf8_length(static_cast<unsigned char>(word.text[i]));
        ++characters;
      }
    }
    words = std::move(result);
  }

 private:
  size_t length_;
};

class Sequence : public PreTokenizer {
 public:
  explicit Sequence(const JsonSite& site) {
    const JsonSite list = site.at("pretokenizers");
    list.expect(list.node().is_array(), "an array of pre-tokenizers");
    for (size_t i = 0; i < list.node().size(); ++i) {
      if (auto pre_tokenizer = make_pre_tokenizer(list.element(i))) {
        steps_.push_back(std::move(pre_tokenizer));
      }
    }
  }
  void pre_tokenize(std::vector<PreToken>& words) const override {
    for (const auto& step : steps_) step->pre_tokenize(words);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const JsonSite& site) {
  if (site.node().is_null()) return nullptr;
  const std::string type =
      site.type("pre-tokenizer", {"BertPreTokenizer", "Whitespace", "WhitespaceSplit", "ByteLevel",
                                  "Metaspace", "Split", "Digits", "Punctuation",
                                  "CharDelimiterSplit", "FixedLength", "Sequence"});
  if (type == "BertPreTokenizer") return std::make_unique<BertPreTokenizer>();
  if (type == "Whitespace") return std::make_unique<Whitespace>();
  if (type == "WhitespaceSplit") return std::make_unique<WhitespaceSplit>();
  if (type == "ByteLevel") return std::make_unique<ByteLevel>(site);
  if (type == "Metaspace") return std::make_unique<Metaspace>(site);
  if (type == "Split") return std::make_unique<Split>(site);
  if (type == "Digits") return std::make_unique<Digits>(site);
  if (type == "Punctuation") return std::make_unique<Punctuation>(site);
  if (type == "CharDelimiterSplit") return std::make_unique<CharDelimiterSplit>(site);
  if (type == "FixedLength") return std::make_unique<FixedLength>(site);
  return std::make_unique<Sequence>(site);
}

}  // namespace engine::hf
