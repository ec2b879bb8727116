// Unigram as tokenizers runs it (its encode_optimized, after sentencepiece's): a Viterbi search
// left to right over byte positions in double precision, where a later path replaces an earlier
// one only with a strictly higher score, so ties go to the path found first (shorter pieces
// from the leftmost start); a character that no piece covers costs min_score - 10 as the unknown
// token; runs of unknown tokens are fused into one, which byte_fallback spells as <0xXX> bytes.
#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "engine/common/error.h"
#include "engine/text/hf_model.h"
#include "engine/text/hf_unicode.h"

namespace engine::hf {
namespace {

constexpr double kUnknownPenalty = 10.0;

// A byte trie over the pieces; children sorted by byte.
class PieceTrie {
 public:
  PieceTrie() : nodes_(1) {}

  void insert(std::string_view piece, int64_t id) {
    size_t node = 0;
    for (char c : piece) {
      const auto byte = static_cast<unsigned char>(c);
      auto& children = nodes_[node].children;
      auto found =
          std::lower_bound(children.begin(), children.end(), byte,
                           [](const auto& child, unsigned char b) { return child.first < b; });
      if (found == children.end() || found->first != byte) {
        found = children.insert(found, {byte, nodes_.size()});
        const size_t index = found->second;
        nodes_.emplace_back();
        node = index;
      } else {
        node = found->second;
      }
    }
    nodes_[node].id = id;
  }

  // Calls visit(length, id) for every piece that is a prefix of `text`, shortest first.
  template <typename Visit>
  void prefixes(std::string_view text, Visit visit) const {
    size_t node = 0;
    for (size_t i = 0; i < text.size(); ++i) {
      const auto byte = static_cast<unsigned char>(text[i]);
      const auto& children = nodes_[node].children;
      const auto found =
          std::lower_bound(children.begin(), children.end(), byte,
                           [](const auto& child, unsigned char b) { return child.first < b; });
      if (found == children.end() || found->first != byte) return;
      node = found->second;
      if (nodes_[node].id >= 0) visit(i + 1, nodes_[node].id);
    }
  }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, size_t>> children;
    int64_t id = -1;
  };
  std::vector<Node> nodes_;
};

class UnigramModel : public Model {
 public:
  explicit UnigramModel(const JsonSite& site) {
    const JsonSite vocab = site.at("vocab");
    vocab.expect(vocab.node().is_array(), "an array of [piece, score]");
    scores_.reserve(vocab.node().size());
    for (size_t id = 0; id < vocab.node().size(); ++id) {
      const JsonSite entry = vocab.element(id);
      entry.expect(entry.node().is_array() && entry.node().size() == 2 &&
                       entry.node()[0].is_string() && entry.node()[1].is_number(),
                   "a [piece, score] pair");
      const std::string piece = entry.node()[0].get<std::string>();
      const double score = entry.node()[1].get<double>();
      vocabulary_.add(piece, static_cast<int64_t>(id));
      scores_.push_back(score);
      min_score_ = std::min(min_score_, score);
    }
    // The trie holds each piece under its last id, as tokenizers' token_to_ids map.
    for (size_t id = 0; id < scores_.size(); ++id) {
      const std::string& piece = *vocabulary_.token(static_cast<int64_t>(id));
      if (vocabulary_.find(piece) == static_cast<int64_t>(id))
        trie_.insert(piece, static_cast<int64_t>(id));
    }
    if (site.has("unk_id")) {
      const int64_t unk = site.get_int("unk_id");
      if (unk < 0 || unk >= static_cast<int64_t>(scores_.size())) {
        site.at("unk_id").fail(
            fmt::format("expected an id below the vocabulary's {}", scores_.size()));
      }
      unk_id_ = unk;
    }
    byte_fallback_ = site.get_bool("byte_fallback", false);
  }

  void tokenize(std::string_view word, std::vector<int64_t>& ids) const override {
    for (const auto& [start, end] : best_pieces(word)) {
      const std::string_view piece = word.substr(start, end - start);
      if (auto id = vocabulary_.find(piece)) {
        ids.push_back(*id);
      } else if (!byte_fallback_ || !push_bytes(piece, ids)) {
        ids.push_back(*unk_id_);
      }
    }
  }

  std::optional<int64_t> unk_id() const override { return unk_id_; }
  // Pieces listed twice count twice, as in tokenizers.
  size_t entry_count() const override { return scores_.size(); }

 private:
  struct Node {
    double score = 0.0;
    int64_t id = -1;
    size_t start = 0;
    bool reached = false;
  };

  // Byte ranges of the best segmentation, runs of unknown characters fused.
  std::vector<std::pair<size_t, size_t>> best_pieces(std::string_view word) const {
    std::vector<Node> best(word.size() + 1);
    best[0].reached = true;
    const double unknown_score = min_score_ - kUnknownPenalty;
    for (size_t start = 0; start < word.size();) {
      const double here = best[start].score;
      const size_t character = utf8_length(static_cast<unsigned char>(word[start]));
      bool single_character = false;
      trie_.prefixes(word.substr(start), [&](size_t length, int64_t id) {
        Node& target = best[start + length];
        const double candidate = here + scores_[static_cast<size_t>(id)];
        if (!target.reached || candidate > target.score) target = {candidate, id, start, true};
        if (length == character) single_character = true;
      });
      if (!single_character) {
        check<RecordError>(unk_id_.has_value(),
                           "the Unigram model has no unk_id for a character it cannot cover");
        Node& target = best[start + character];
        const double candidate = here + unknown_score;
        if (!target.reached || candidate > target.score)
          target = {candidate, *unk_id_, start, true};
      }
      start += character;
    }
    std::vector<std::pair<size_t, size_t>> pieces;
    std::optional<std::pair<size_t, size_t>> unknown_run;
    for (size_t end = word.size(); end > 0;) {
      const Node& node = best[end];
      if (unk_id_ && node.id == *unk_id_) {
        unknown_run = {node.start, unknown_run ? unknown_run->second : end};
      } else {
        if (unknown_run) pieces.push_back(*unknown_run);
        unknown_run.reset();
        pieces.emplace_back(node.start, end);
      }
      end = node.start;
    }
    if (unknown_run) pieces.push_back(*unknown_run);
    std::reverse(pieces.begin(), pieces.end());
    return pieces;
  }

  bool push_bytes(std::string_view piece, std::vector<int64_t>& ids) const {
    const size_t before = ids.size();
    for (char byte : piece) {
      const auto id = vocabulary_.find(fmt::format("<0x{:02X}>", static_cast<unsigned char>(byte)));
      if (!id) {
        ids.resize(before);
        return false;
      }
      ids.push_back(*id);
    }
    return true;
  }

  std::vector<double> scores_;
  double min_score_ = std::numeric_limits<double>::infinity();
  PieceTrie trie_;
  std::optional<int64_t> unk_id_;
  bool byte_fallback_ = false;
};

}  // namespace

std::unique_ptr<Model> make_unigram_model(const JsonSite& site) {
  return std::make_unique<UnigramModel>(site);
}

}  // namespace engine::hf
