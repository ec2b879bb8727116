// Length bucketing: sort sequences by length, longest first, and cut them into batches under a
// batch-size and a token budget that counts padding. Each batch keeps the sequences' original
// indices, so results go back where they came from.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace engine {

struct BatchLimits {
  size_t max_batch_size = 32;
  int64_t max_tokens = 16384;  // batch size x padded length, padding included
  size_t pad_multiple = 1;     // padded lengths are rounded up to a multiple of this,
  size_t max_padded_length = 0;  // but not past this (the model's positions); 0: no cap
};

struct BatchPlan {
  std::vector<size_t> indices;  // into the lengths given to cut_batches, longest first
  size_t padded_length = 0;
  size_t real_tokens = 0;
  size_t padded_tokens() const { return indices.size() * padded_length; }
};

// Batches covering every index exactly once. A sequence whose padded length alone passes
// max_tokens goes in a batch of its own. Sorting is stable, so equal lengths keep input order.
std::vector<BatchPlan> cut_batches(const std::vector<size_t>& lengths, const BatchLimits& limits);

size_t round_up(size_t length, size_t multiple);

// The length a batch whose longest sequence has `longest` tokens is padded to.
size_t padded_length(size_t longest, const BatchLimits& limits);

}  // namespace engine
