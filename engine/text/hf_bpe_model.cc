// BPE as tokenizers runs it: each character (with the continuation prefix and end-of-word suffix
// where they apply) looked up, unknown characters to bytes (<0xXX>) or to the unknown token
// (fused or not), then the merges applied lowest rank first, leftmost first, with a priority
// queue, so a long word costs n log n.
#include <fmt/format.h>

#include <queue>

#include "engine/common/error.h"
#include "engine/text/hf_model.h"
#include "engine/text/hf_unicode.h"
#include "engine/text/hf_word_cache.h"

namespace engine::hf {
namespace {

struct MergeTarget {
  uint32_t rank;
  int64_t id;
};

uint64_t pair_key(int64_t left, int64_t right) {
  return (static_cast<uint64_t>(left) << 32) | static_cast<uint64_t>(right);
}

// One symbol of the word being merged, in a doubly linked list over the symbol array.
struct Symbol {
  int64_t id;
  int64_t prev;
  int64_t next;
  bool removed;
};

struct QueuedMerge {
  uint32_t rank;
  size_t position;
  int64_t id;
  // std::priority_queue pops the largest: the lowest rank, then the leftmost position.
  bool operator<(const QueuedMerge& other) const {
    return rank != other.rank ? rank > other.rank : position > other.position;
  }
};

class BpeModel : public Model {
 public:
  explicit BpeModel(const JsonSite& site) {
    read_vocabulary_object(site.at("vocab"), vocabulary_);
    if (site.has("dropout")) {
      const JsonSite dropout = site.at("dropout");
      dropout.expect(dropout.node().is_number(), "a number or null");
      if (dropout.node().get<double>() != 0.0) {
        dropout.fail("BPE dropout is random; only null or 0 can give fixed ids");
      }
    }
    if (site.has("unk_token")) {
      unk_token_ = site.get_string("unk_token");
      unk_id_ = vocabulary_.find(*unk_token_);
    }
    prefix_ = site.get_string("continuing_subword_prefix", "");
    suffix_ = site.get_string("end_of_word_suffix", "");
    fuse_unk_ = site.get_bool("fuse_unk", false);
    byte_fallback_ = site.get_bool("byte_fallback", false);
    ignore_merges_ = site.get_bool("ignore_merges", false);
    read_merges(site.at("merges"));
  }

  void tokenize(std::string_view word, std::vector<int64_t>& ids) const override {
    if (ignore_merges_) {
      if (auto id = vocabulary_.find(word)) {
        ids.push_back(*id);
        return;
      }
    }
    if (cache_.find(word, ids)) return;
    const size_t before = ids.size();
    merge_word(word, ids);
    cache_.insert(word, ids.data() + before, ids.data() + ids.size());
  }

  std::optional<int64_t> unk_id() const override { return unk_id_; }

 private:
  void read_merges(const JsonSite& merges) {
    merges.expect(merges.node().is_array(), "an array of merges");
    merges_.reserve(merges.node().size());
    for (size_t rank = 0; rank < merges.node().size(); ++rank) {
      const JsonSite merge = merges.element(rank);
      std::string left, right;
      if (merge.node().is_string()) {  // the old "a b" form
        const std::string text = merge.node().get<std::string>();
        const size_t space = text.find(' ');
        if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
          merge.fail("expected a merge \"left right\" with one space");
        }
        left = text.substr(0, space);
        right = text.substr(space + 1);
      } else {
        merge.expect(merge.node().is_array() && merge.node().size() == 2 &&
                         merge.node()[0].is_string() && merge.node()[1].is_string(),
                     "a merge [\"left\", \"right\"]");
        left = merge.node()[0].get<std::string>();
        right = merge.node()[1].get<std::string>();
      }
      add_merge(merge, left, right, static_cast<uint32_t>(rank));
    }
  }

  void add_merge(const JsonSite& merge, const std::string& left, const std::string& right,
                 uint32_t rank) {
    const auto left_id = vocabulary_.find(left);
    const auto right_id = vocabulary_.find(right);
    if (!left_id || !right_id) merge.fail("a merge of tokens that are not in the vocabulary");
    // As tokenizers: the prefix's length is cut off the right part whether or not it has it.
    if (right.size() < prefix_.size()) merge.fail("the right part is shorter than the prefix");
    const auto merged = vocabulary_.find(left + right.substr(prefix_.size()));
    if (!merged) merge.fail("the merged token is not in the vocabulary");
    // A pair listed twice keeps its last rank, as tokenizers' hash map does.
    merges_.insert_or_assign(pair_key(*left_id, *right_id), MergeTarget{rank, *merged});
  }

  // The initial symbols of `word`: one per character, or its bytes, or unknown tokens.
  void initial_symbols(std::string_view word, std::vector<int64_t>& symbols) const {
    std::optional<int64_t> pending_unk;
    std::string piece;
    for (size_t i = 0; i < word.size();) {
      const size_t length = utf8_length(static_cast<unsigned char>(word[i]));
      piece.assign(i > 0 ? prefix_ : std::string());
      piece.append(word.substr(i, length));
      i += length;
      if (i >= word.size()) piece += suffix_;
      if (auto id = vocabulary_.find(piece)) {
        if (pending_unk) symbols.push_back(*pending_unk);
        pending_unk.reset();
        symbols.push_back(*id);
        continue;
      }
      if (byte_fallback_ && push_bytes(piece, symbols)) continue;
      if (!unk_token_) continue;  // no unknown token: the character is dropped
      check<RecordError>(unk_id_.has_value(), "the BPE unknown token '{}' is not in the vocabulary",
                         *unk_token_);
      if (pending_unk && !fuse_unk_) symbols.push_back(*pending_unk);
      pending_unk = unk_id_;
    }
    if (pending_unk) symbols.push_back(*pending_unk);
  }

  // <0xXX> of every byte of `piece`, when all of them are in the vocabulary.
  bool push_bytes(const std::string& piece, std::vector<int64_t>& symbols) const {
    const size_t before = symbols.size();
    for (char byte : piece) {
      const auto id = vocabulary_.find(fmt::format("<0x{:02X}>", static_cast<unsigned char>(byte)));
      if (!id) {
        symbols.resize(before);
        return false;
      }
      symbols.push_back(*id);
    }
    return true;
  }

  void merge_word(std::string_view word, std::vector<int64_t>& ids) const {
    std::vector<int64_t> initial;
    initial_symbols(word, initial);
    std::vector<Symbol> symbols(initial.size());
    for (size_t i = 0; i < initial.size(); ++i) {
      symbols[i] = {initial[i], static_cast<int64_t>(i) - 1,
                    i + 1 < initial.size() ? static_cast<int64_t>(i) + 1 : -1, false};
    }
    std::priority_queue<QueuedMerge> queue;
    auto push_pair = [&](size_t position) {
      const int64_t next = symbols[position].next;
      if (next < 0) return;
      const auto found =
          merges_.find(pair_key(symbols[position].id, symbols[static_cast<size_t>(next)].id));
      if (found != merges_.end()) queue.push({found->second.rank, position, found->second.id});
    };
    for (size_t i = 0; i + 1 < symbols.size(); ++i) push_pair(i);
    while (!queue.empty()) {
      const QueuedMerge top = queue.top();
      queue.pop();
      Symbol& left = symbols[top.position];
      if (left.removed || left.next < 0) continue;
      Symbol& right = symbols[static_cast<size_t>(left.next)];
      // Skip entries made stale by an earlier merge of either symbol.
      const auto current = merges_.find(pair_key(left.id, right.id));
      if (current == merges_.end() || current->second.id != top.id) continue;
      left.id = top.id;
      right.removed = true;
      left.next = right.next;
      if (right.next >= 0)
        symbols[static_cast<size_t>(right.next)].prev = static_cast<int64_t>(top.position);
      if (left.prev >= 0) push_pair(static_cast<size_t>(left.prev));
      push_pair(top.position);
    }
    for (const Symbol& symbol : symbols) {
      if (!symbol.removed) ids.push_back(symbol.id);
    }
  }

  std::optional<std::string> unk_token_;
  std::optional<int64_t> unk_id_;
  std::string prefix_;
  std::string suffix_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::unordered_map<uint64_t, MergeTarget> merges_;
  WordCache cache_;
};

}  // namespace

std::unique_ptr<Model> make_bpe_model(const JsonSite& site) {
  return std::make_unique<BpeModel>(site);
}

}  // namespace engine::hf
