#include "engine/batching/length_bucketer.h"

#include <algorithm>
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

  std::vector<BatchPlan> batches;
  BatchPlan current;
  for (size_t index : order) {
    // Sorted longest first, so the first sequence of a batch fixes its padded length.
    const size_t padded = padded_length(lengths[index], limits);
    const size_t length = std::max(current.padded_length, padded);
    const bool fits = current.indices.size() < limits.max_batch_size &&
                      static_cast<int64_t>((current.indices.size() + 1) * length) <=
                          limits.max_tokens;
    if (!current.indices.empty() && !fits) {
      batches.push_back(std::move(current));
      current = BatchPlan();
    }
    current.padded_length = std::max(current.padded_length, padded);
    current.indices.push_back(index);
    current.real_tokens += lengths[index];
  }
  if (!current.indices.empty()) batches.push_back(std::move(current));
  return batches;
}

}  // namespace engine
