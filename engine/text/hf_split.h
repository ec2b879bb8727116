// How tokenizers cuts a string: a pattern partitions it into matches and the text between them
// (Pattern::find_matches), and a delimiter behavior decides what becomes of the matches
// (NormalizedString::split). Shared by the Replace normalizer and the pre-tokenizers.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/text/hf_json.h"
#include "engine/text/hf_regex.h"
#include "engine/text/hf_unicode.h"

namespace engine::hf {

// One part of the partition, byte offsets.
struct Segment {
  size_t start;
  size_t end;
  bool is_match;
};
using Partition = std::vector<Segment>;

// Every matching character is a match of its own; the runs between them are not matches.
template <typename Predicate>
Partition partition_chars(std::string_view text, Predicate matches);
Partition partition_regex(const Regex& regex, std::string_view text);
Partition partition_literal(std::string_view needle, std::string_view text);
// Matches become non-matches and the other way round (tokenizers' Invert).
void invert(Partition& partition);

// A "pattern" of tokenizer.json: {"String": "..."} or {"Regex": "..."}.
class SplitPattern {
 public:
  explicit SplitPattern(const JsonSite& site);
  Partition partition(std::string_view text) const;

 private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
SplitBehavior parse_split_behavior(const JsonSite& site);

// Byte ranges [start, end) of the pieces that `behavior` keeps, empty ones included.
std::vector<std::pair<size_t, size_t>> split_pieces(const Partition& partition,
                                                    SplitBehavior behavior);

template <typename Predicate>
Partition partition_chars(std::string_view text, Predicate matches) {
  Partition partition;
  if (text.empty()) {
    partition.push_back({0, 0, false});
    return partition;
  }
  size_t last = 0;
  for (size_t i = 0; i < text.size();) {
    const size_t length = utf8_length(static_cast<unsigned char>(text[i]));
    if (matches(decode_at(text, i))) {
      if (last < i) partition.push_back({last, i, false});
      partition.push_back({i, i + length, true});
      last = i + length;
    }
    i += length;
  }
  if (last < text.size()) partition.push_back({last, text.size(), false});
  return partition;
}

}  // namespace engine::hf
