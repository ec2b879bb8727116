#include "engine/jobs/guarded_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "engine/common/error.h"

namespace engine {

BatchOutcome GuardedRunner::run(const std::vector<const Encoding*>& batch) {
  BatchOutcome outcome;
  outcome.results.resize(batch.size());
  outcome.errors.resize(batch.size());
  const size_t length = batch.empty() ? 0 : padded_length(batch.front()->size(), limits_);
  const size_t most = controller_.max_batch(length, batch.size());

  if (most < batch.size()) {
    ++stats_.splits_before;
    spdlog::debug("memory budget: {} sequences of {} tokens (predicted {}) run {} at a time",
                  batch.size(), length,
                  format_bytes(static_cast<int64_t>(controller_.predicted_rise(batch.size(), length))),
                  most);
  }
  for (size_t begin = 0; begin < batch.size(); begin += most) {
    run_range(batch, begin, std::min(begin + most, batch.size()), outcome);
  }
  return outcome;
}

void GuardedRunner::run_range(const std::vector<const Encoding*>& batch, size_t begin, size_t end,
                              BatchOutcome& outcome) {
  const std::vector<const Encoding*> part(batch.begin() + static_cast<long>(begin),
                                          batch.begin() + static_cast<long>(end));
  const size_t length = padded_length(part.front()->size(), limits_);
  try {
    memory_.reset_peak();
    const int64_t before = memory_.stats().allocated;
    std::vector<SequenceResult> results = adapter_.run(part, length);
    ++stats_.forward_passes;
    check<std::runtime_error>(results.size() == part.size(),
                              "the model gave {} results for a batch of {}", results.size(),
                              part.size());
    const int64_t peak = memory_.stats().peak_allocated;
    stats_.peak_allocated = std::max(stats_.peak_allocated, peak);
    controller_.observe(part.size(), length, peak - before);
    for (size_t i = 0; i < results.size(); ++i) {
      outcome.results[begin + i] = std::move(results[i]);
    }
    cache_.after_batch();
  } catch (const std::exception& error) {
    if (!is_out_of_memory(error)) throw;
    ++stats_.out_of_memory;
    cache_.empty_now();
    controller_.out_of_memory(part.size(), length);
    if (part.size() == 1) {
      ++stats_.failed_sequences;
      outcome.errors[begin] = fmt::format(
          "a sequence of {} tokens does not fit in memory even alone ({}); raise memory.limit "
          "or lower task.max_length",
          part.front()->size(), std::string(error.what()).substr(0, 200));
      spdlog::warn("out of memory on a single sequence of {} tokens; its record gets an error "
                   "line",
                   part.front()->size());
      return;
    }
    const size_t middle = begin + part.size() / 2;
    spdlog::info("out of memory on {} sequences of {} tokens: retrying as {} and {}", part.size(),
                 length, middle - begin, end - middle);
    run_range(batch, begin, middle, outcome);
    run_range(batch, middle, end, outcome);
  }
}

}  // namespace engine
