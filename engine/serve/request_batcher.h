// Requests from many clients, batched together for the model: the batch job's own model stage
// (jobs/model_stage.h: length bucketing under the token budget, budget splits, out-of-memory
// split and retry, so every request gets its answer, and the cache policy), on one model thread. A
// request is queued whole; the model thread waits at most serve.max_wait_ms after the oldest queued
// request for others to join it, then takes requests in arrival order up to a round of work, cuts
// their sequences into batches, runs them and answers each request. The queue is bounded
// (serve.max_queue_sequences): a request that would pass it is refused at once rather than waiting
// behind an unbounded queue.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "engine/config/config.h"
#include "engine/jobs/model_stage.h"
#include "engine/runtime/family_adapter.h"

namespace engine {

// What the model thread did, for /metrics; called on the model thread.
struct BatchObserver {
  virtual ~BatchObserver() = default;
  // One forward batch: its sequences, real and padded tokens, seconds.
  virtual void on_batch(size_t sequences, size_t real_tokens, size_t padded_tokens,
                        double seconds) = 0;
  // One request answered: seconds queued before its round started, seconds of its round.
  virtual void on_request(double queued_seconds, double compute_seconds) = 0;
};

class RequestBatcher {
 public:
  // Starts the model thread.
  RequestBatcher(const Config& config, FamilyAdapter& adapter, DeviceMemory& memory,
                 BatchObserver& observer);
  ~RequestBatcher();  // stop()

  // Runs the longest shape the family makes once (ModelStage::warm_up), on the calling thread,
  // before the server reports ready.
  void warm_up();

  // Queues one request's sequences (they must outlive the answer). nullopt when the queue has no
  // room for them (429), or the batcher is stopping (503). The future holds one result or error
  // per sequence, in order.
  std::optional<std::future<BatchOutcome>> submit(std::vector<const Encoding*> sequences);

  // Answers everything queued, then stops the model thread. Later submits are refused.
  void stop();

  size_t queued_sequences() const;
  GuardStats guard_stats() const;
  int64_t cache_emptied() const;

 private:
  struct Request {
    std::vector<const Encoding*> sequences;
    int64_t tokens = 0;  // of its sequences
    std::promise<BatchOutcome> answer;
    std::chrono::steady_clock::time_point arrived;
  };

  void loop();
  // Takes the requests of the next round: waits for the first, then up to max_wait for more, and
  // takes at least one and at most about a round of tokens.
  std::vector<Request> next_round();
  void run_round(std::vector<Request>& round);

  const Config& config_;
  BatchObserver& observer_;
  ModelStage stage_;
  const int64_t round_tokens_;

  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  std::deque<Request> queue_;
  size_t queued_sequences_ = 0;
  int64_t queued_tokens_ = 0;
  bool stopping_ = false;
  GuardStats stats_;  // a copy of the runner's, under mutex_
  int64_t cache_emptied_ = 0;
  std::thread model_thread_;
};

}  // namespace engine
