// The one way token sequences reach the model, for a batch job's windows (batch_job.h) and the
// server's request rounds (serve/request_batcher.h) alike: sorted by length and cut into padded
// batches under the batching limits (batching/length_bucketer.h; a record's sequences kept
// together where the adapter runs their shared prefix once), each batch run by a
// GuardedRunner (split before it runs when the memory budget predicts too much; split and retried
// after an out-of-memory error), and the cache policy's turn once a window or round is done.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "engine/batching/length_bucketer.h"
#include "engine/config/config.h"
#include "engine/jobs/guarded_runner.h"
#include "engine/memory/batch_controller.h"
#include "engine/memory/cache_policy.h"
#include "engine/memory/device_memory.h"
#include "engine/runtime/family_adapter.h"

namespace engine {

// One batch the model ran, for progress, summaries and /metrics.
struct BatchReport {
  size_t sequences = 0;
  size_t real_tokens = 0;
  size_t padded_tokens = 0;
  double seconds = 0;
};

class ModelStage {
 public:
  ModelStage(const Config& config, FamilyAdapter& adapter, DeviceMemory& memory);

  // Runs `sequences` (any order, any lengths up to task.max_length): one result or error per
  // sequence, in the order given. `on_batch` is called after each batch, on this thread.
  BatchOutcome run(const std::vector<const Encoding*>& sequences,
                   const std::function<void(const BatchReport&)>& on_batch = nullptr);
  // After a window or a round of requests: the cache policy may empty the allocator's cache.
  void after_request() { cache_.after_request(); }
  // memory.warmup (and `engine serve` before it reports ready): runs the longest shape the family
  // makes, in the largest batch the limits allow, once: the allocator reserves its working set up
  // front, the controller gets a first measurement, and a budget or limit too small for it shows
  // before any record is read.
  void warm_up();

  const BatchLimits& limits() const { return limits_; }
  int64_t budget() const { return controller_.budget(); }
  const GuardStats& stats() const { return runner_.stats(); }
  int64_t cache_emptied() const { return cache_.times_emptied(); }

 private:
  // cut_batches, or cut_grouped_batches by shared prefix where the adapter runs one once.
  std::vector<BatchPlan> plan_batches(const std::vector<const Encoding*>& sequences,
                                      const std::vector<size_t>& lengths) const;

  const Config& config_;
  FamilyAdapter& adapter_;
  DeviceMemory& memory_;
  BatchLimits limits_;
  BatchController controller_;
  CachePolicy cache_;
  GuardedRunner runner_;
};

// The batching limits of `config`: batching.*, task.max_length, and batch_cost_tokens auto (64 on
// a CPU, max_tokens on a GPU).
BatchLimits batch_limits(const Config& config);
// memory.budget in bytes, or its fraction of what is free once the model is loaded.
int64_t memory_budget(const MemoryConfig& config, const DeviceMemory& memory);

}  // namespace engine
