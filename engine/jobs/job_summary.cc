// The job summary: combining the summaries of a job's pieces, JSON for --summary and workers, and
// the closing lines on stderr.
#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

#include "engine/jobs/batch_job.h"

namespace engine {

namespace {

// The summary's counters by their JSON names: added up over a job's pieces.
constexpr std::pair<const char*, int64_t JobSummary::*> kCounts[] = {
    {"records", &JobSummary::records},
    {"error_records", &JobSummary::error_records},
    {"pairs", &JobSummary::pairs},
    {"sequences", &JobSummary::sequences},
    {"batches", &JobSummary::batches},
    {"real_tokens", &JobSummary::real_tokens},
    {"padded_tokens", &JobSummary::padded_tokens},
    {"forward_passes", &JobSummary::forward_passes},
    {"out_of_memory", &JobSummary::out_of_memory},
    {"budget_splits", &JobSummary::budget_splits},
    {"cache_emptied", &JobSummary::cache_emptied},
    {"resumed_records", &JobSummary::resumed_records},
    {"resumed_pairs", &JobSummary::resumed_pairs},
};

// The memory figures, under "memory": peaks are the largest over the pieces, the rest the last's.
constexpr std::pair<const char*, int64_t MemoryStats::*> kMemory[] = {
    {"allocated", &MemoryStats::allocated}, {"peak_allocated", &MemoryStats::peak_allocated},
    {"reserved", &MemoryStats::reserved},   {"peak_reserved", &MemoryStats::peak_reserved},
    {"total", &MemoryStats::total},         {"free", &MemoryStats::free},
};

bool is_peak(int64_t MemoryStats::*field) {
  return field == &MemoryStats::peak_allocated || field == &MemoryStats::peak_reserved;
}

}  // namespace

void add_summary(JobSummary& total, const JobSummary& part) {
  for (const auto& [name, field] : kCounts) total.*field += part.*field;
  total.seconds += part.seconds;
  total.warmup_seconds += part.warmup_seconds;
  total.model_seconds += part.model_seconds;
  total.peak_resident = std::max(total.peak_resident, part.peak_resident);
  if (total.numerics.is_null()) total.numerics = part.numerics;
  for (const auto& [name, field] : kMemory) {
    total.memory.*field =
        is_peak(field) ? std::max(total.memory.*field, part.memory.*field) : part.memory.*field;
  }
}

JobSummary summary_from_json(const nlohmann::json& json) {
  JobSummary summary;
  for (const auto& [name, field] : kCounts) summary.*field = json.value(name, int64_t{0});
  summary.seconds = json.value("seconds", 0.0);
  summary.warmup_seconds = json.value("warmup_seconds", 0.0);
  summary.model_seconds = json.value("model_seconds", 0.0);
  summary.peak_resident = json.value("peak_resident", int64_t{0});
  summary.numerics = json.value("numerics", nlohmann::json());
  const nlohmann::json memory = json.value("memory", nlohmann::json::object());
  for (const auto& [name, field] : kMemory) summary.memory.*field = memory.value(name, int64_t{0});
  return summary;
}

nlohmann::json summary_json(const JobSummary& summary) {
  nlohmann::json json = {{"seconds", summary.seconds},
                         {"warmup_seconds", summary.warmup_seconds},
                         {"model_seconds", summary.model_seconds},
                         {"peak_resident", summary.peak_resident}};
  for (const auto& [name, field] : kCounts) json[name] = summary.*field;
  if (!summary.numerics.is_null()) json["numerics"] = summary.numerics;
  nlohmann::json& memory = json["memory"];
  for (const auto& [name, field] : kMemory) memory[name] = summary.memory.*field;
  return json;
}

void log_summary(const JobSummary& summary, const std::string& memory_name, TaskKind kind) {
  const char* unit = kind == TaskKind::kEmbed ? "texts" : "pairs";
  const double seconds = std::max(summary.seconds, 1e-9);
  const double padding = summary.padded_tokens > 0
                             ? 100.0 * static_cast<double>(summary.real_tokens) /
                                   static_cast<double>(summary.padded_tokens)
                             : 100.0;
  spdlog::info("done: {} records ({} error records), {} {} in {:.2f} s", summary.records,
               summary.error_records, summary.pairs, unit, summary.seconds);
  if (summary.resumed_records > 0) {
    spdlog::info("resumed: {} of those records were written before the restart",
                 summary.resumed_records);
  }
  spdlog::info(
      "throughput: {:.1f} {}/s, {:.0f} tokens/s; {} batches, padding efficiency "
      "{:.1f}%",
      static_cast<double>(summary.pairs - summary.resumed_pairs) / seconds, unit,
      static_cast<double>(summary.real_tokens) / seconds, summary.batches, padding);
  const double after_warmup = summary.seconds - summary.warmup_seconds;
  if (summary.batches > 0 && after_warmup > 0) {
    spdlog::info("model busy {:.1f}% of the time after the warm-up ({:.2f} of {:.2f} s)",
                 100.0 * std::min(summary.model_seconds / after_warmup, 1.0), summary.model_seconds,
                 after_warmup);
  }
  spdlog::info("peak memory: {} allocated, {} reserved on {}; process resident peak {}",
               format_bytes(summary.memory.peak_allocated),
               format_bytes(summary.memory.peak_reserved), memory_name,
               format_bytes(summary.peak_resident));
  if (summary.out_of_memory > 0 || summary.budget_splits > 0 || summary.cache_emptied > 0) {
    spdlog::info(
        "memory: {} out-of-memory errors recovered by splitting, {} batches split ahead "
        "by the budget, {} forward passes, cache emptied {} times",
        summary.out_of_memory, summary.budget_splits, summary.forward_passes,
        summary.cache_emptied);
  }
  if (summary.error_records > 0) {
    spdlog::warn(
        "{} of {} records are error records: their output lines carry \"error\" and "
        "the input line number",
        summary.error_records, summary.records);
  }
}

}  // namespace engine
