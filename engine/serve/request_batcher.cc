#include "engine/serve/request_batcher.h"

#include <algorithm>

#include <spdlog/spdlog.h>

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
      observer_(observer),
      stage_(config, adapter, memory),
      // A round is about as many tokens as the bucketer can cut into a few full batches: enough to
      // batch many small requests, little enough that a request arriving now waits one round at
      // most.
      round_tokens_(4 * stage_.limits().max_tokens),
      model_thread_([this] { loop(); }) {}

RequestBatcher::~RequestBatcher() { stop(); }

void RequestBatcher::warm_up() {
  // The model thread runs nothing until a request comes; none comes before the server is ready.
  stage_.warm_up();
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
  const auto deadline =
      queue_.front().arrived +
      std::chrono::microseconds(static_cast<int64_t>(config_.serve.max_wait_ms * 1000));
  while (!stopping_ && queued_tokens_ < round_tokens_ &&
         arrived_.wait_until(lock, deadline) != std::cv_status::timeout) {
  }
  std::vector<Request> round;
  int64_t tokens = 0;
  while (!queue_.empty()) {
    if (!round.empty() && tokens + queue_.front().tokens > round_tokens_) break;
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
  std::vector<const Encoding*> sequences;
  for (const Request& request : round) {
    sequences.insert(sequences.end(), request.sequences.begin(), request.sequences.end());
  }
  BatchOutcome all = stage_.run(sequences, [&](const BatchReport& batch) {
    observer_.on_batch(batch.sequences, batch.real_tokens, batch.padded_tokens, batch.seconds);
  });
  stage_.after_request();
  const auto end = std::chrono::steady_clock::now();
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stats_ = stage_.stats();
    cache_emptied_ = stage_.cache_emptied();
  }
  size_t next = 0;
  for (Request& request : round) {
    BatchOutcome outcome;
    const auto first = static_cast<long>(next);
    const auto last = static_cast<long>(next + request.sequences.size());
    outcome.results.assign(std::make_move_iterator(all.results.begin() + first),
                           std::make_move_iterator(all.results.begin() + last));
    outcome.errors.assign(std::make_move_iterator(all.errors.begin() + first),
                          std::make_move_iterator(all.errors.begin() + last));
    next += request.sequences.size();
    observer_.on_request(seconds_since(request.arrived, start), seconds_since(start, end));
    request.answer.set_value(std::move(outcome));
  }
}

}  // namespace engine
