#include "engine/text/hf_split.h"

#include <algorithm>
#include <stdexcept>

namespace engine::hf {

Partition partition_regex(const Regex& regex, std::string_view text) {
  Partition partition;
  if (text.empty()) {
    partition.push_back({0, 0, false});
    return partition;
  }
  size_t last = 0;
  for (const auto& [start, end] : regex.find_all(text)) {
    if (last != start) partition.push_back({last, start, false});
    partition.push_back({start, end, true});
    last = end;
  }
  if (last != text.size()) partition.push_back({last, text.size(), false});
  return partition;
}

Partition partition_literal(std::string_view needle, std::string_view text) {
  Partition partition;
  if (text.empty() || needle.empty()) {
    partition.push_back({0, text.size(), false});
    return partition;
  }
  size_t last = 0;
  for (size_t found = text.find(needle); found != std::string_view::npos;
       found = text.find(needle, found + needle.size())) {
    if (last != found) partition.push_back({last, found, false});
    partition.push_back({found, found + needle.size(), true});
    last = found + needle.size();
  }
  if (last != text.size()) partition.push_back({last, text.size(), false});
  return partition;
}

void invert(Partition& partition) {
  for (Segment& segment : partition) segment.is_match = !segment.is_match;
}

SplitPattern::SplitPattern(const JsonSite& site) {
  site.expect(site.node().is_object() && site.node().size() == 1,
              "a pattern {\"String\": ...} or {\"Regex\": ...}");
  if (site.has("String")) {
    literal_ = site.get_string("String");
  } else if (site.has("Regex")) {
    try {
      regex_ = std::make_unique<Regex>(site.get_string("Regex"));
    } catch (const std::invalid_argument& error) {
      site.fail(error.what());
    }
  } else {
    site.fail("expected a pattern {\"String\": ...} or {\"Regex\": ...}");
  }
}

Partition SplitPattern::partition(std::string_view text) const {
  return regex_ ? partition_regex(*regex_, text) : partition_literal(literal_, text);
}

SplitBehavior parse_split_behavior(const JsonSite& site) {
  site.expect(site.node().is_string(), "a split behavior string");
  const std::string name = site.node().get<std::string>();
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  site.fail("split behavior '" + name +
            "' is not supported; supported: Removed, Isolated, MergedWithPrevious, "
            "MergedWithNext, Contiguous");
}

std::vector<std::pair<size_t, size_t>> split_pieces(const Partition& partition,
                                                    SplitBehavior behavior) {
  std::vector<std::pair<size_t, size_t>> pieces;
  pieces.reserve(partition.size());
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const Segment& segment : partition) {
        if (!segment.is_match) pieces.emplace_back(segment.start, segment.end);
      }
      break;
    case SplitBehavior::kIsolated:
      for (const Segment& segment : partition) pieces.emplace_back(segment.start, segment.end);
      break;
    case SplitBehavior::kContiguous:
      for (const Segment& segment : partition) {
        if (!pieces.empty() && segment.is_match == previous_match) {
          pieces.back().second = segment.end;
        } else {
          pieces.emplace_back(segment.start, segment.end);
        }
        previous_match = segment.is_match;
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Segment& segment : partition) {
        if (!pieces.empty() && segment.is_match && !previous_match) {
          pieces.back().second = segment.end;
        } else {
          pieces.emplace_back(segment.start, segment.end);
        }
        previous_match = segment.is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (auto it = partition.rbegin(); it != partition.rend(); ++it) {
        if (!pieces.empty() && it->is_match && !previous_match) {
          pieces.back().first = it->start;
        } else {
          pieces.emplace_back(it->start, it->end);
        }
        previous_match = it->is_match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
  }
  return pieces;
}

}  // namespace engine::hf
