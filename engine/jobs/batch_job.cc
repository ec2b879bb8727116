#include "engine/jobs/batch_job.h"

#include <algorithm>
#include <optional>

#include <spdlog/spdlog.h>

#include "engine/batching/length_bucketer.h"
#include "engine/common/error.h"
#include "engine/io/jsonl_reader.h"
#include "engine/io/jsonl_writer.h"
#include "engine/io/records.h"
#include "engine/jobs/guarded_runner.h"
#include "engine/jobs/progress.h"
#include "engine/memory/batch_controller.h"
#include "engine/memory/cache_policy.h"

namespace engine {
namespace {

struct PendingRecord {
  int64_t line = 0;
  nlohmann::json id;
  std::optional<TaskRecord> record;  // empty for an error record
  std::string error;
  std::vector<PlannedSequence> plan;
  std::vector<SequenceResult> results;  // one per planned sequence
};

// Records read together, and where each of their sequences is.
struct Window {
  std::vector<PendingRecord> records;
  std::vector<std::pair<size_t, size_t>> sequences;  // (record, index in its plan)
};

void add_line(Window& window, const InputLine& line, TaskKind kind, const FamilyAdapter& adapter) {
  PendingRecord pending;
  pending.line = line.number;
  try {
    check<RecordError>(!line.too_long,
                       "line of {} bytes is longer than input.max_line_bytes; raise the limit "
                       "or shorten the record",
                       line.bytes);
    TaskRecord record = parse_record(line.text, kind, pending.id);
    pending.plan = adapter.plan(record);
    pending.results.resize(pending.plan.size());
    pending.record = std::move(record);
  } catch (const RecordError& error) {
    pending.error = error.what();
    pending.plan.clear();
  }
  const size_t record_index = window.records.size();
  for (size_t i = 0; i < pending.plan.size(); ++i) window.sequences.emplace_back(record_index, i);
  window.records.push_back(std::move(pending));
}

BatchLimits batch_limits(const Config& config) {
  BatchLimits limits;
  limits.max_batch_size = static_cast<size_t>(config.batching.max_batch_size);
  limits.max_tokens = config.batching.max_tokens;
  limits.pad_multiple = static_cast<size_t>(config.batching.pad_multiple);
  limits.max_padded_length = static_cast<size_t>(config.task.max_length);
  return limits;
}

// memory.budget in bytes, or its fraction of what is free once the model is loaded.
int64_t memory_budget(const MemoryConfig& config, const DeviceMemory& memory) {
  if (config.budget_fraction > 0) {
    return static_cast<int64_t>(config.budget_fraction * static_cast<double>(memory.stats().free));
  }
  return config.budget;
}

class JobRunner {
 public:
  JobRunner(const Config& config, FamilyAdapter& adapter, DeviceMemory& memory)
      : config_(config),
        adapter_(adapter),
        memory_(memory),
        progress_(count_lines(config.io.input_path), config.logging.progress_interval_s),
        limits_(batch_limits(config)),
        controller_(memory_budget(config.memory, memory)),
        cache_(config.memory, memory),
        guarded_(adapter, memory, controller_, cache_, limits_) {
    if (controller_.budget() > 0) {
      spdlog::info("memory budget for batches: {}", format_bytes(controller_.budget()));
    }
  }

  JobSummary run() {
    memory_.reset_peak();
    if (config_.memory.warmup) warm_up();
    JsonlReader reader(config_.io.input_path, config_.io.max_line_bytes);
    JsonlWriter writer(config_.io.output_path);
    InputLine line;
    Window window;
    while (reader.next(line)) {
      add_line(window, line, config_.task.kind, adapter_);
      if (window.sequences.size() >= static_cast<size_t>(config_.batching.window)) {
        finish_window(window, writer);
      }
    }
    finish_window(window, writer);
    writer.commit();
    summary_.seconds = progress_.elapsed_s();
    summary_.memory = memory_.stats();
    // Each batch resets the allocator's peak to measure itself; the job's peak is the highest.
    summary_.memory.peak_allocated =
        std::max(summary_.memory.peak_allocated, guarded_.stats().peak_allocated);
    summary_.forward_passes = guarded_.stats().forward_passes;
    summary_.out_of_memory = guarded_.stats().out_of_memory;
    summary_.budget_splits = guarded_.stats().splits_before;
    summary_.cache_emptied = cache_.times_emptied();
    return summary_;
  }

 private:
  // Runs the longest shape the family makes, in the largest batch the limits allow, once before
  // the job: the allocator reserves its working set up front, the controller gets a first
  // measurement, and a budget or limit too small for it shows before any record is read.
  void warm_up() {
    std::string filler;
    for (int i = 0; i < config_.task.max_length * 2; ++i) filler += "warm ";
    TaskRecord record;
    record.query = filler;
    if (config_.task.kind != TaskKind::kEmbed) record.passages.push_back({filler, nullptr});
    const std::vector<PlannedSequence> plan = adapter_.plan(record);
    if (plan.empty()) return;
    const auto longest = std::max_element(
        plan.begin(), plan.end(),
        [](const auto& a, const auto& b) { return a.encoding.size() < b.encoding.size(); });
    const size_t length = padded_length(longest->encoding.size(), limits_);
    const size_t count = std::clamp<size_t>(
        static_cast<size_t>(limits_.max_tokens) / std::max<size_t>(length, 1), 1,
        limits_.max_batch_size);
    const BatchOutcome outcome =
        guarded_.run(std::vector<const Encoding*>(count, &longest->encoding));
    const bool fits = std::all_of(outcome.errors.begin(), outcome.errors.end(),
                                  [](const std::string& error) { return error.empty(); });
    spdlog::info("warm-up: {} sequences of {} tokens {}; peak {} allocated, {} reserved", count,
                 length, fits ? "ran" : "did not fit even one at a time",
                 format_bytes(guarded_.stats().peak_allocated),
                 format_bytes(memory_.stats().reserved));
  }

  void finish_window(Window& window, JsonlWriter& writer) {
    score_window(window);
    for (const PendingRecord& pending : window.records) writer.write(output_of(pending));
    window = Window();
    cache_.after_request();
  }

  void score_window(Window& window) {
    std::vector<size_t> lengths;
    lengths.reserve(window.sequences.size());
    for (const auto& [record, index] : window.sequences) {
      lengths.push_back(window.records[record].plan[index].encoding.size());
    }
    size_t scored = 0;
    for (const BatchPlan& plan : cut_batches(lengths, limits_)) {
      std::vector<const Encoding*> batch;
      for (size_t sequence : plan.indices) {
        const auto [record, index] = window.sequences[sequence];
        batch.push_back(&window.records[record].plan[index].encoding);
      }
      BatchOutcome outcome = guarded_.run(batch);
      for (size_t i = 0; i < batch.size(); ++i) {
        const auto [record, index] = window.sequences[plan.indices[i]];
        PendingRecord& pending = window.records[record];
        if (!outcome.errors[i].empty()) {
          pending.error = outcome.errors[i];
        } else {
          pending.results[index] = std::move(outcome.results[i]);
        }
      }
      summary_.batches += 1;
      summary_.real_tokens += static_cast<int64_t>(plan.real_tokens);
      summary_.padded_tokens += static_cast<int64_t>(plan.padded_tokens());
      scored += batch.size();
      progress_.update(static_cast<double>(summary_.records) +
                       static_cast<double>(window.records.size() * scored) /
                           static_cast<double>(window.sequences.size()));
    }
    summary_.sequences += static_cast<int64_t>(window.sequences.size());
  }

  OutputRecord output_of(const PendingRecord& pending) {
    summary_.records += 1;
    if (!pending.record || !pending.error.empty()) {
      summary_.error_records += 1;
      spdlog::debug("line {}: {}", pending.line, pending.error);
      return error_record(pending.line, pending.id, pending.error);
    }
    summary_.pairs += static_cast<int64_t>(std::max<size_t>(pending.record->passages.size(), 1));
    return adapter_.finish(*pending.record, pending.plan, pending.results);
  }

  const Config& config_;
  FamilyAdapter& adapter_;
  DeviceMemory& memory_;
  ProgressReporter progress_;
  BatchLimits limits_;
  BatchController controller_;
  CachePolicy cache_;
  GuardedRunner guarded_;
  JobSummary summary_;
};

}  // namespace

JobSummary run_batch_job(const Config& config, FamilyAdapter& adapter, DeviceMemory& memory) {
  return JobRunner(config, adapter, memory).run();
}

void log_summary(const JobSummary& summary, const DeviceMemory& memory, TaskKind kind) {
  const char* unit = kind == TaskKind::kEmbed ? "texts" : "pairs";
  const double seconds = std::max(summary.seconds, 1e-9);
  const double padding = summary.padded_tokens > 0 ? 100.0 * static_cast<double>(
                                                                 summary.real_tokens) /
                                                         static_cast<double>(summary.padded_tokens)
                                                   : 100.0;
  spdlog::info("done: {} records ({} error records), {} {} in {:.2f} s", summary.records,
               summary.error_records, summary.pairs, unit, summary.seconds);
  spdlog::info("throughput: {:.1f} {}/s, {:.0f} tokens/s; {} batches, padding efficiency "
               "{:.1f}%",
               static_cast<double>(summary.pairs) / seconds, unit,
               static_cast<double>(summary.real_tokens) / seconds, summary.batches, padding);
  spdlog::info("peak memory: {} allocated, {} reserved on {}",
               format_bytes(summary.memory.peak_allocated),
               format_bytes(summary.memory.peak_reserved), memory.name());
  if (summary.out_of_memory > 0 || summary.budget_splits > 0 || summary.cache_emptied > 0) {
    spdlog::info("memory: {} out-of-memory errors recovered by splitting, {} batches split ahead "
                 "by the budget, {} forward passes, cache emptied {} times",
                 summary.out_of_memory, summary.budget_splits, summary.forward_passes,
                 summary.cache_emptied);
  }
  if (summary.error_records > 0) {
    spdlog::warn("{} of {} records are error records: their output lines carry \"error\" and "
                 "the input line number",
                 summary.error_records, summary.records);
  }
}

}  // namespace engine
