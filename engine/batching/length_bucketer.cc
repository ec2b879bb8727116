#include "engine/batching/length_bucketer.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace engine {

size_t round_up(size_t length, size_t multiple) {
  if (multiple <= 1) return length;
  return (length + multiple - 1) / multiple * multiple;
}

size_t padded_length(size_t longest, const BatchLimits& limits) {
  size_t padded = round_up(longest, limits.pad_multiple);
  if (limits.max_padded_length > 0) {
    padded = std::max(longest, std::min(padded, limits.max_padded_length));
  }
  return padded;
}

std::vector<BatchPlan> cut_batches(const std::vector<size_t>& lengths, const BatchLimits& limits) {
  std::vector<size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return lengths[a] > lengths[b]; });
  const size_t count = order.size();
  const size_t largest = std::max<size_t>(limits.max_batch_size, 1);
  const int64_t batch_cost = std::max<int64_t>(limits.batch_cost_tokens, 0);

  // cost[j]: the cheapest cut of the first j sorted sequences; start[j]: where its last batch
  // begins. Sorted longest first, so a batch [i, j) is padded to sequence i's padded length.
  std::vector<int64_t> cost(count + 1, 0);
  std::vector<size_t> start(count + 1, 0);
  for (size_t end = 1; end <= count; ++end) {
    cost[end] = -1;
    // From the smallest last batch up: on equal cost the smaller last batch (fuller earlier
    // ones) is kept.
    for (size_t first = end; first-- > 0 && end - first <= largest;) {
      const int64_t size = static_cast<int64_t>(end - first);
      const int64_t padded = static_cast<int64_t>(padded_length(lengths[order[first]], limits));
      if (size > 1 && size * padded > limits.max_tokens) break;  // longer batches pass it too
      const int64_t total = cost[first] + size * padded + batch_cost;
      if (cost[end] < 0 || total < cost[end]) {
        cost[end] = total;
        start[end] = first;
      }
    }
  }

  std::vector<BatchPlan> batches;
  for (size_t end = count; end > 0; end = start[end]) {
    BatchPlan plan;
    for (size_t i = start[end]; i < end; ++i) {
      plan.indices.push_back(order[i]);
      plan.real_tokens += lengths[order[i]];
    }
    plan.padded_length = padded_length(lengths[order[start[end]]], limits);
    batches.push_back(std::move(plan));
  }
  std::reverse(batches.begin(), batches.end());
  return batches;
}

std::vector<BatchPlan> cut_grouped_batches(const std::vector<size_t>& lengths,
                                           const std::vector<size_t>& groups,
                                           const BatchLimits& limits) {
  std::map<size_t, std::vector<size_t>> members;
  std::vector<size_t> first_seen;
  for (size_t i = 0; i < lengths.size(); ++i) {
    if (groups[i] == kNoGroup) continue;
    std::vector<size_t>& group = members[groups[i]];
    if (group.empty()) first_seen.push_back(groups[i]);
    group.push_back(i);
  }
  std::vector<size_t> rest;
  for (size_t i = 0; i < lengths.size(); ++i) {
    if (groups[i] == kNoGroup || members[groups[i]].size() == 1) rest.push_back(i);
  }
  std::vector<std::vector<size_t>> parts;
  for (size_t group : first_seen) {
    if (members[group].size() > 1) parts.push_back(members[group]);
  }
  if (!rest.empty()) parts.push_back(std::move(rest));

  std::vector<BatchPlan> batches;
  for (const std::vector<size_t>& part : parts) {
    std::vector<size_t> part_lengths;
    part_lengths.reserve(part.size());
    for (size_t index : part) part_lengths.push_back(lengths[index]);
    for (BatchPlan& plan : cut_batches(part_lengths, limits)) {
      for (size_t& index : plan.indices) index = part[index];
      batches.push_back(std::move(plan));
    }
  }
  return batches;
}

}  // namespace engine
