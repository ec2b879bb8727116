// Runs batches so that memory never costs a record: a batch predicted to pass the memory budget
// is split before it runs, and one that runs out of memory is split in halves and retried, after
// emptying the allocator's cache. Only a single sequence that does not fit even alone fails, and
// it fails as its record's error line, never silently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/batching/length_bucketer.h"
#include "engine/memory/batch_controller.h"
#include "engine/memory/cache_policy.h"
#include "engine/runtime/family_adapter.h"

namespace engine {

struct BatchOutcome {
  std::vector<SequenceResult> results;  // one per sequence
  std::vector<std::string> errors;      // one per sequence; empty when it ran
};

struct GuardStats {
  int64_t forward_passes = 0;
  int64_t splits_before = 0;       // batches split because the budget predicted too much
  int64_t out_of_memory = 0;       // out-of-memory errors caught and recovered from
  int64_t failed_sequences = 0;    // sequences that did not fit even alone
  int64_t peak_allocated = 0;      // the highest allocator peak over all batches
};

class GuardedRunner {
 public:
  GuardedRunner(FamilyAdapter& adapter, DeviceMemory& memory, BatchController& controller,
                CachePolicy& cache, const BatchLimits& limits)
      : adapter_(adapter), memory_(memory), controller_(controller), cache_(cache),
        limits_(limits) {}

  // `batch` is sorted longest first, as cut_batches gives it.
  BatchOutcome run(const std::vector<const Encoding*>& batch);
  const GuardStats& stats() const { return stats_; }

 private:
  void run_range(const std::vector<const Encoding*>& batch, size_t begin, size_t end,
                 BatchOutcome& outcome);

  FamilyAdapter& adapter_;
  DeviceMemory& memory_;
  BatchController& controller_;
  CachePolicy& cache_;
  BatchLimits limits_;
  GuardStats stats_;
};

}  // namespace engine
