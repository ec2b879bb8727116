// Keeps batches under a memory budget. After every batch it records how far the allocator's peak
// rose above what was allocated before it, and fits that rise as a per-token term plus
// attention's quadratic term: rise ~ a * (batch x length) + b * (batch x length^2). Before a
// batch it predicts the rise and says how many sequences of that length fit the budget. An
// out-of-memory error lowers the ceiling for that shape at once, before the fit catches up.
// A family that knows what its graph holds per token (the LLM reranker, from its architecture)
// gives a prior: it plans the batches before the first one ran, and while one length only has
// been seen it gives the fit its shape (how the rise splits between the two terms).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>

namespace engine {

class BatchController {
 public:
  // `budget`: bytes the batches may add above what is allocated before them; 0: no budget
  // (batches are limited by out-of-memory errors alone).
  explicit BatchController(int64_t budget) : budget_(budget) {}

  // The most sequences padded to `length` to run together: at most `wanted`, at least 1.
  size_t max_batch(size_t length, size_t wanted) const;

  // A batch of `batch` sequences of `length` raised the peak by `rise` bytes.
  void observe(size_t batch, size_t length, int64_t rise);

  // The rise expected before anything was observed: `per_token` bytes per token and
  // `per_token_squared` per token and position (0 for a graph with no length-squared tensor).
  void set_prior(double per_token, double per_token_squared);

  // A batch of `batch` sequences of `length` ran out of memory.
  void out_of_memory(size_t batch, size_t length);

  // Predicted rise for a batch; 0 before anything was observed.
  double predicted_rise(size_t batch, size_t length) const;

  int64_t budget() const { return budget_; }
  int64_t out_of_memory_count() const { return out_of_memory_count_; }

 private:
  void fit();

  int64_t budget_;
  // Least-squares sums over observations of x1 = B*L, x2 = B*L^2 and y = rise (no intercept:
  // the rise of an empty batch is zero).
  double s11_ = 0, s12_ = 0, s22_ = 0, s1y_ = 0, s2y_ = 0;
  int observations_ = 0;
  double per_token_ = 0;     // a
  double per_token_sq_ = 0;  // b
  // Until two lengths were seen the split between a and b is unknown: both extremes are kept and
  // the prediction takes the larger, which errs towards smaller batches.
  bool one_length_ = true;
  double only_linear_ = 0;     // a when b = 0
  double only_quadratic_ = 0;  // b when a = 0
  // The prior (set_prior), and the factor that scales it to the observations of one length.
  bool has_prior_ = false;
  double prior_linear_ = 0, prior_quadratic_ = 0;
  double prior_scale_ = 1;
  double s_py_ = 0, s_pp_ = 0;  // sums of prior * rise and prior^2 over observations
  size_t first_length_ = 0;
  // After an out-of-memory error: for each length, the batch size that failed.
  std::map<size_t, size_t> failed_at_;
  int64_t out_of_memory_count_ = 0;
};

// Whether `error` is an out-of-memory error: LibTorch's own, or one that TorchScript re-threw as a
// plain runtime error whose message says "out of memory".
bool is_out_of_memory(const std::exception& error);

}  // namespace engine
