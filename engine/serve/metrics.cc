#include "engine/serve/metrics.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include <fmt/format.h>

namespace engine {
namespace {

const std::vector<double> kLatencyBounds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                            0.5,   1,      2.5,   5,    10,    30,   60};
const std::vector<double> kSizeBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
const std::vector<double> kTokenBounds = {64,   128,  256,   512,   1024,  2048,
                                          4096, 8192, 16384, 32768, 65536, 131072};

std::string number(double value) {
  if (std::isinf(value)) return "+Inf";
  return fmt::format("{}", value);
}

std::string with(const std::string& labels, const std::string& more) {
  if (labels.empty()) return more;
  return labels + "," + more;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  ++counts_[bucket];
  sum_ += value;
  ++count_;
}

std::string Histogram::text(const std::string& name, const std::string& labels) const {
  std::string out;
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const double bound = i < bounds_.size() ? bounds_[i] : INFINITY;
    out += fmt::format("{}_bucket{{{}}} {}\n", name,
                       with(labels, fmt::format("le=\"{}\"", number(bound))), cumulative);
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out +=
      fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, braces, number(sum_), name, braces, count_);
  return out;
}

ServeMetrics::ServeMetrics()
    : batch_sequences_(kSizeBounds),
      batch_tokens_(kTokenBounds),
      batch_seconds_(kLatencyBounds),
      queue_seconds_(kLatencyBounds),
      compute_seconds_(kLatencyBounds) {}

void ServeMetrics::on_batch(size_t sequences, size_t real_tokens, size_t padded_tokens,
                            double seconds) {
  const std::lock_guard<std::mutex> lock(mutex_);
  batch_sequences_.observe(static_cast<double>(sequences));
  batch_tokens_.observe(static_cast<double>(padded_tokens));
  batch_seconds_.observe(seconds);
  real_tokens_ += real_tokens;
  padded_tokens_ += padded_tokens;
}

void ServeMetrics::on_request(double queued_seconds, double compute_seconds) {
  const std::lock_guard<std::mutex> lock(mutex_);
  queue_seconds_.observe(queued_seconds);
  compute_seconds_.observe(compute_seconds);
}

void ServeMetrics::on_response(const std::string& route, int status, double seconds) {
  const std::lock_guard<std::mutex> lock(mutex_);
  ++responses_[{route, status}];
  total_seconds_.try_emplace(route, kLatencyBounds).first->second.observe(seconds);
}

std::string ServeMetrics::text(const ServeGauges& gauges) const {
  const std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  header(out, "engine_requests_total", "counter", "HTTP requests answered, by route and status.");
  for (const auto& [key, count] : responses_) {
    out += fmt::format("engine_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", key.first,
                       key.second, count);
  }
  header(out, "engine_request_duration_seconds", "histogram",
         "From a request's arrival to its answer, by route.");
  for (const auto& [route, histogram] : total_seconds_) {
    out += histogram.text("engine_request_duration_seconds", fmt::format("route=\"{}\"", route));
  }
  header(out, "engine_queue_duration_seconds", "histogram",
         "How long a request's sequences waited before the model took them.");
  out += queue_seconds_.text("engine_queue_duration_seconds", "");
  header(out, "engine_compute_duration_seconds", "histogram",
         "The model's time on the round of batches that answered a request.");
  out += compute_seconds_.text("engine_compute_duration_seconds", "");
  header(out, "engine_batch_size", "histogram", "Sequences per forward batch.");
  out += batch_sequences_.text("engine_batch_size", "");
  header(out, "engine_batch_tokens", "histogram", "Padded tokens per forward batch.");
  out += batch_tokens_.text("engine_batch_tokens", "");
  header(out, "engine_batch_duration_seconds", "histogram", "Seconds per forward batch.");
  out += batch_seconds_.text("engine_batch_duration_seconds", "");
  header(out, "engine_tokens_total", "counter", "Tokens through the model, real and padded.");
  out += fmt::format("engine_tokens_total{{kind=\"real\"}} {}\n", real_tokens_);
  out += fmt::format("engine_tokens_total{{kind=\"padded\"}} {}\n", padded_tokens_);
  // One value each: name, type, help, value.
  const std::tuple<const char*, const char*, const char*, int64_t> scalars[] = {
      {"engine_queue_sequences", "gauge", "Sequences waiting for the model.",
       static_cast<int64_t>(gauges.queued_sequences)},
      {"engine_memory_allocated_bytes", "gauge", "Bytes in live tensors now (the weights).",
       gauges.allocated},
      {"engine_memory_peak_allocated_bytes", "gauge",
       "The allocator's highest peak over all batches.", gauges.peak_allocated},
      {"engine_memory_reserved_bytes", "gauge", "Bytes the allocator holds now.", gauges.reserved},
      {"engine_process_resident_peak_bytes", "gauge", "The process's resident peak.",
       gauges.peak_resident},
      {"engine_cache_clears_total", "counter", "Times the allocator's cache was emptied.",
       gauges.cache_emptied},
      {"engine_oom_splits_total", "counter",
       "Out-of-memory errors recovered from by splitting a batch.", gauges.out_of_memory},
      {"engine_budget_splits_total", "counter",
       "Batches split before running because of memory.budget.", gauges.budget_splits},
      {"engine_forward_passes_total", "counter", "Forward passes run.", gauges.forward_passes},
      {"engine_open_connections", "gauge", "Client connections open now.",
       gauges.open_connections},
      {"engine_ready", "gauge", "1 once the model is loaded and warmed up.", gauges.ready ? 1 : 0},
  };
  for (const auto& [name, type, help, value] : scalars) {
    header(out, name, type, help);
    out += fmt::format("{} {}\n", name, value);
  }
  return out;
}

}  // namespace engine
