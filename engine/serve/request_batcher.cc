#include "engine/serve/request_batcher.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "engine/batching/length_bucketer.h"
#include "engine/jobs/batch_job.h"

namespace engine {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start,
                     std::chrono::steady_clock::time_point end) {
  return std::chrono::duration<double>(end - start).count();
}

}  // namespace

RequestBatcher::RequestBatcher(const Config& config, FamilyAdapter& adapter, DeviceMemory& memory,
                               BatchObserver& observer)
    : config_(config),
      adapter_(adapter),
      memory_(memory),
      observer_(observer),
      limits_(batch_limits(config)),
      controller_(memory_budget(config.memory, memory)),
      cache_(config.memory, memory),
      runner_(adapter, memory, controller_, cache_, limits_),
      model_thread_([this] { loop(); }) {}

RequestBatcher::~RequestBatcher() { stop(); }

void RequestBatcher::warm_up() {
  // The model thread runs nothing until a request comes; none comes before the server is ready.
  engine::warm_up(config_.task, adapter_, runner_, limits_, memory_);
}

std::optional<std::future<BatchOutcome>> RequestBatcher::submit(
    std::vector<const Encoding*> sequences) {
  Request request;
  request.sequences = std::move(sequences);
  for (const Encoding* sequence : request.sequences) {
    request.tokens += static_cast<int64_t>(sequence->size());
  }
  request.arrived = std::chrono::steady_clock::now();
  std::future<BatchOutcome> answer = request.answer.get_future();
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    const size_t count = request.sequences.size();
    // A request larger than the whole queue is still taken when the queue is empty.
    if (stopping_ ||
        (queued_sequences_ > 0 &&
         queued_sequences_ + count > static_cast<size_t>(config_.serve.max_queue_sequences))) {
      return std::nullopt;
    }
    queued_sequences_ += count;
    queued_tokens_ += request.tokens;
    queue_.push_back(std::move(request));
  }
  arrived_.notify_one();
  return answer;
}

void RequestBatcher::stop() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  arrived_.notify_all();
  if (model_thread_.joinable()) model_thread_.join();
}

size_t RequestBatcher::queued_sequences() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return queued_sequences_;
}

GuardStats RequestBatcher::guard_stats() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

int64_t RequestBatcher::cache_emptied() const {
  const std::lock_guard<std::mutex> lock(mutex_);
  return cache_emptied_;
}

std::vector<RequestBatcher::Request> RequestBatcher::next_round() {
  std::unique_lock<std::mutex> lock(mutex_);
  arrived_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
  if (queue_.empty()) return {};
  // A round is about as many tokens as the bucketer can cut into a few full batches: enough to
  // batch many small requests, little enough that a request arriving now waits one round at most.
  const int64_t round_tokens = 4 * limits_.max_tokens;
  const auto deadline =
      queue_.front().arrived +
      std::chrono::microseconds(static_cast<int64_t>(config_.serve.max_wait_ms * 1000));
  while (!stopping_ && queued_tokens_ < round_tokens &&
         arrived_.wait_until(lock, deadline) != std::cv_status::timeout) {
  }
  std::vector<Request> round;
  int64_t tokens = 0;
  while (!queue_.empty()) {
    if (!round.empty() && tokens + queue_.front().tokens > round_tokens) break;
    tokens += queue_.front().tokens;
    queued_tokens_ -= queue_.front().tokens;
    queued_sequences_ -= queue_.front().sequences.size();
    round.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return round;
}

void RequestBatcher::loop() {
  while (true) {
    std::vector<Request> round = next_round();
    if (round.empty()) return;  // stopping, and nothing is queued
    try {
      run_round(round);
    } catch (...) {
      for (Request& request : round) {
        try {
          request.answer.set_exception(std::current_exception());
        } catch (const std::future_error&) {
          // answered before the failure
        }
      }
    }
  }
}

void RequestBatcher::run_round(std::vector<Request>& round) {
  const auto start = std::chrono::steady_clock::now();
  // Every sequence of the round, with where its result goes.
  std::vector<std::pair<size_t, size_t>> where;  // (request, sequence)
  std::vector<size_t> lengths;
  std::vector<BatchOutcome> outcomes(round.size());
  for (size_t r = 0; r < round.size(); ++r) {
    outcomes[r].results.resize(round[r].sequences.size());
    outcomes[r].errors.resize(round[r].sequences.size());
    for (size_t s = 0; s < round[r].sequences.size(); ++s) {
      where.emplace_back(r, s);
      lengths.push_back(round[r].sequences[s]->size());
    }
  }
  for (const BatchPlan& plan : cut_batches(lengths, limits_)) {
    std::vector<const Encoding*> batch;
    for (size_t index : plan.indices) {
      const auto [r, s] = where[index];
      batch.push_back(round[r].sequences[s]);
    }
    const auto batch_start = std::chrono::steady_clock::now();
    BatchOutcome outcome = runner_.run(batch);
    observer_.on_batch(batch.size(), plan.real_tokens, plan.padded_tokens(),
                       seconds_since(batch_start, std::chrono::steady_clock::now()));
    for (size_t i = 0; i < batch.size(); ++i) {
      const auto [r, s] = where[plan.indices[i]];
      outcomes[r].results[s] = std::move(outcome.results[i]);
      outcomes[r].errors[s] = std::move(outcome.errors[i]);
    }
  }
  cache_.after_request();
  const auto end = std::chrono::steady_clock::now();
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stats_ = runner_.stats();
    cache_emptied_ = cache_.times_emptied();
  }
  for (size_t r = 0; r < round.size(); ++r) {
    observer_.on_request(seconds_since(round[r].arrived, start), seconds_since(start, end));
    round[r].answer.set_value(std::move(outcomes[r]));
  }
}

}  // namespace engine
