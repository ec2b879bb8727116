// What `engine serve` counts, shown at GET /metrics in Prometheus' text format (version 0.0.4):
// requests by route and status, queue depth, batch sizes and tokens per batch, latency
// histograms (queued, compute, total), memory peak, cache clears and out-of-memory splits. The
// format is written here by hand: a few counters and histograms need no library.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "engine/serve/request_batcher.h"

namespace engine {

// A cumulative histogram over fixed upper bounds.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);
  // The exposition lines of `name` with `labels` ("" or `route="/rerank"`).
  std::string text(const std::string& name, const std::string& labels) const;

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bound, not cumulative; the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Gauges read when /metrics is asked for.
struct ServeGauges {
  size_t queued_sequences = 0;
  int64_t allocated = 0;
  int64_t peak_allocated = 0;
  int64_t reserved = 0;
  int64_t peak_resident = 0;
  int64_t cache_emptied = 0;
  int64_t out_of_memory = 0;
  int64_t budget_splits = 0;
  int64_t forward_passes = 0;
  int64_t open_connections = 0;
  bool ready = false;
};

class ServeMetrics : public BatchObserver {
 public:
  ServeMetrics();

  void on_batch(size_t sequences, size_t real_tokens, size_t padded_tokens,
                double seconds) override;
  void on_request(double queued_seconds, double compute_seconds) override;
  // A request answered by the HTTP layer: its route, status and seconds from arrival to answer.
  void on_response(const std::string& route, int status, double seconds);

  std::string text(const ServeGauges& gauges) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, uint64_t> responses_;
  std::map<std::string, Histogram> total_seconds_;  // by route
  Histogram batch_sequences_;
  Histogram batch_tokens_;
  Histogram batch_seconds_;
  Histogram queue_seconds_;
  Histogram compute_seconds_;
  uint64_t real_tokens_ = 0;
  uint64_t padded_tokens_ = 0;
};

}  // namespace engine
