// Length bucketing: sort sequences by length, longest first, and cut them into batches under a
// batch-size and a token budget that counts padding. Where the cuts go is chosen to minimise the
// padded tokens plus a fixed cost per batch (batch_cost_tokens): a long run of one length fills
// whole batches, and a spread of lengths is cut where the length drops, rather than every
// max_batch_size sequences. Each batch keeps the sequences' original indices, so results go
// back where they came from.
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
  // What one more forward pass costs, in padded tokens: small on a CPU, where a batch's time is
  // its tokens' and a pass adds a few milliseconds; large on a GPU, where fewer, fuller passes
  // win. A batch is split where that saves more padding than this.
  int64_t batch_cost_tokens = 64;
};

struct BatchPlan {
  std::vector<size_t> indices;  // into the lengths given to cut_batches, longest first
  size_t padded_length = 0;
  size_t real_tokens = 0;
  size_t padded_tokens() const { return indices.size() * padded_length; }
};

// Batches covering every index exactly once, of consecutive sequences in the sorted order, with
// the least padded tokens + batch_cost_tokens x batches (ties: the earlier batches fuller). A
// sequence whose padded length alone passes max_tokens goes in a batch of its own. Sorting is
// stable, so equal lengths keep input order.
std::vector<BatchPlan> cut_batches(const std::vector<size_t>& lengths, const BatchLimits& limits);

// Sequences of no group: cut_grouped_batches sorts them among the others by length.
inline constexpr size_t kNoGroup = static_cast<size_t>(-1);

// As cut_batches, but a group of two or more sequences (a rerank record's passages, for a model
// that runs their shared prefix once) is cut on its own, so that its sequences share batches
// with each other only; groups come in the order of their first sequence, then the sequences of
// no group and the groups of one, cut together. groups[i] is sequence i's group or kNoGroup.
std::vector<BatchPlan> cut_grouped_batches(const std::vector<size_t>& lengths,
                                           const std::vector<size_t>& groups,
                                           const BatchLimits& limits);

size_t round_up(size_t length, size_t multiple);

// The length a batch whose longest sequence has `longest` tokens is padded to.
size_t padded_length(size_t longest, const BatchLimits& limits);

}  // namespace engine
