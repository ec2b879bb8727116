// WordPiece: greedy longest match first, continuations carry the prefix ("##"); a word longer
// than max_input_chars_per_word characters, or one that cannot be covered, is the unknown token.
#include <fmt/format.h>

#include <algorithm>

#include "engine/common/error.h"
#include "engine/text/hf_model.h"
#include "engine/text/hf_unicode.h"
#include "engine/text/hf_word_cache.h"

namespace engine::hf {
namespace {

class WordPieceModel : public Model {
 public:
  explicit WordPieceModel(const JsonSite& site)
      : unk_token_(site.get_string("unk_token", "[UNK]")),
        prefix_(site.get_string("continuing_subword_prefix", "##")) {
    read_vocabulary_object(site.at("vocab"), vocabulary_);
    if (site.has("max_input_chars_per_word")) {
      const int64_t limit = site.get_int("max_input_chars_per_word");
      if (limit < 0) site.at("max_input_chars_per_word").fail("expected a count of 0 or more");
      max_characters_ = static_cast<size_t>(limit);
    }
    unk_id_ = vocabulary_.find(unk_token_);
    for (int64_t id = 0; id < vocabulary_.id_bound(); ++id) {
      if (const std::string* token = vocabulary_.token(id)) {
        longest_token_ = std::max(longest_token_, token->size());
      }
    }
  }

  void tokenize(std::string_view word, std::vector<int64_t>& ids) const override {
    if (cache_.find(word, ids)) return;
    const size_t before = ids.size();
    if (!pieces(word, ids)) {
      ids.resize(before);
      check<RecordError>(unk_id_.has_value(), "the WordPiece vocabulary has no unknown token '{}'",
                         unk_token_);
      ids.push_back(*unk_id_);
    }
    cache_.insert(word, ids.data() + before, ids.data() + ids.size());
  }

  std::optional<int64_t> unk_id() const override { return unk_id_; }

 private:
  // False when the word is too long or cannot be covered.
  bool pieces(std::string_view word, std::vector<int64_t>& ids) const {
    size_t characters = 0;
    for (size_t i = 0; i < word.size(); i += utf8_length(static_cast<unsigned char>(word[i]))) {
      if (++characters > max_characters_) return false;
    }
    std::string candidate;
    for (size_t start = 0; start < word.size();) {
      // Nothing longer than the longest token can match.
      size_t end = std::min(word.size(), start + longest_token_);
      while (end < word.size() && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;
      std::optional<int64_t> found;
      while (end > start) {
        candidate.assign(start > 0 ? prefix_ : std::string());
        candidate.append(word.substr(start, end - start));
        found = vocabulary_.find(candidate);
        if (found) break;
        do {
          --end;
        } while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
      }
      if (!found) return false;
      ids.push_back(*found);
      start = end;
    }
    return true;
  }

  std::string unk_token_;
  std::string prefix_;
  size_t max_characters_ = 100;
  size_t longest_token_ = 0;
  std::optional<int64_t> unk_id_;
  WordCache cache_;
};

}  // namespace

std::unique_ptr<Model> make_wordpiece_model(const JsonSite& site) {
  return std::make_unique<WordPieceModel>(site);
}

}  // namespace engine::hf
