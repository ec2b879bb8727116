#include "engine/jobs/batch_job.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "engine/common/bounded_queue.h"
#include "engine/common/error.h"
#include "engine/common/failpoint.h"
#include "engine/io/checkpoint.h"
#include "engine/io/input_scan.h"
#include "engine/io/jsonl_reader.h"
#include "engine/io/jsonl_writer.h"
#include "engine/io/records.h"
#include "engine/jobs/job_identity.h"
#include "engine/jobs/progress.h"

namespace engine {
namespace {

// Where the reader stands between two lines.
struct InputPosition {
  int64_t line = 1;
  int64_t offset = 0;
};

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

// A window as it moves down the pipeline, with where the reader stood after its last line (where
// a run resumed from its checkpoint goes on).
struct StagedWindow {
  Window window;
  InputPosition next;
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

int64_t lines_of(const Config& config, const JobPart& part) {
  return part.range.end < 0 ? count_lines(config.io.input_path) - (part.range.first_line - 1)
                            : part.range.lines;
}

class JobRunner {
 public:
  JobRunner(const Config& config, FamilyAdapter& adapter, DeviceMemory& memory, const JobPart& part)
      : config_(config),
        adapter_(adapter),
        memory_(memory),
        part_(part),
        progress_(lines_of(config, part), config.logging.progress_interval_s),
        stage_(config, adapter, memory) {
    if (stage_.budget() > 0) {
      spdlog::info("memory budget for batches: {}", format_bytes(stage_.budget()));
    }
  }

  JobSummary run() {
    memory_.reset_peak();
    summary_.numerics = part_.numerics;
    // A checkpoint of another job is refused before the warm-up, not after it.
    const std::optional<Checkpoint> resumed = resume_point();
    if (config_.memory.warmup) {
      const auto start = std::chrono::steady_clock::now();
      stage_.warm_up();
      summary_.warmup_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    InputRange range = part_.range;
    if (resumed) {
      range.lines -= resumed->next_line - range.first_line;
      progress_.set_total(range.lines);
      range.first_line = resumed->next_line;
      range.begin = resumed->next_offset;
    }
    JsonlReader reader(config_.io.input_path, config_.io.max_line_bytes, range);
    JsonlWriter writer(part_.output_path, resumed ? resumed->output_bytes : 0);
    if (part_.on_window) part_.on_window(summary_.records);
    records_scored_ = summary_.records;
    run_pipeline(reader, writer);
    // The checkpoint goes first: killed in between, the job starts this part over, where a
    // checkpoint beside a finished output would name a partial file that is gone.
    writer.sync();
    if (!part_.checkpoint_path.empty()) std::filesystem::remove(part_.checkpoint_path);
    writer.commit();
    summary_.seconds = progress_.elapsed_s();
    summary_.memory = memory_.stats();
    // Each batch resets the allocator's peak to measure itself; the job's peak is the highest.
    const GuardStats& guard = stage_.stats();
    summary_.memory.peak_allocated = std::max(summary_.memory.peak_allocated, guard.peak_allocated);
    summary_.model_seconds = model_seconds_;
    summary_.forward_passes = guard.forward_passes;
    summary_.out_of_memory = guard.out_of_memory;
    summary_.budget_splits = guard.splits_before;
    summary_.cache_emptied = stage_.cache_emptied();
    summary_.peak_resident = process_resident().peak;
    return summary_;
  }

 private:
  // A checkpoint this part left, when it is to be continued. Refuses one of another job.
  std::optional<Checkpoint> resume_point() {
    if (part_.checkpoint_path.empty()) return std::nullopt;
    if (!config_.job.resume) {
      std::filesystem::remove(part_.checkpoint_path);
      return std::nullopt;
    }
    std::optional<Checkpoint> checkpoint = read_checkpoint(part_.checkpoint_path);
    if (!checkpoint) return std::nullopt;
    const std::string changed = identity_difference(checkpoint->identity, part_.identity);
    check<ConfigError>(changed.empty(),
                       "checkpoint '{}' was left by a different job: {} changed since. Restore "
                       "them to continue that job, or start this one over: delete the checkpoint "
                       "or set job.resume: false",
                       part_.checkpoint_path, changed);
    const InputRange& was = checkpoint->range;
    check<ConfigError>(was.first_line == part_.range.first_line && was.begin == part_.range.begin &&
                           was.lines == part_.range.lines && was.end == part_.range.end,
                       "checkpoint '{}' is about lines {}-{} of the input, not {}-{}; delete it",
                       part_.checkpoint_path, was.first_line, was.last_line(),
                       part_.range.first_line, part_.range.last_line());
    summary_.records = summary_.resumed_records = checkpoint->records;
    summary_.error_records = checkpoint->error_records;
    summary_.pairs = summary_.resumed_pairs = checkpoint->pairs;
    spdlog::info("resuming from '{}': lines {}-{} are written, going on at line {}",
                 part_.checkpoint_path, part_.range.first_line, checkpoint->next_line - 1,
                 checkpoint->next_line);
    const std::string moved = numerics_difference(checkpoint->numerics, part_.numerics);
    if (!moved.empty()) {
      spdlog::warn(
          "checkpoint '{}' was written by a run that computed with other numerics: {}. The "
          "output from line {} on may differ from an uninterrupted run's in the last digits of "
          "its scores and vectors (docs/jobs.md); resume with the recorded ones to write the same "
          "bytes",
          part_.checkpoint_path, moved, checkpoint->next_line);
    }
    return checkpoint;
  }

  // Three stages, so that the model never waits for the input or the output: a thread reads
  // and tokenizes the next window while this one scores the current window, and another thread
  // writes and checkpoints the window before it. One window waits between two stages at most,
  // so a window's results are held twice at most (scored and being written). The first stage to
  // fail stops the others; windows scored before the failure are still written.
  void run_pipeline(JsonlReader& reader, JsonlWriter& writer) {
    BoundedQueue<StagedWindow> read(1), scored(1);
    std::mutex failure_mutex;
    std::exception_ptr failure;
    const auto fail = [&](std::exception_ptr error) {
      const std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::move(error);
    };
    std::thread reading([&] {
      try {
        read_windows(reader, read);
      } catch (...) {
        fail(std::current_exception());
      }
      read.close();
    });
    std::thread writing([&] {
      try {
        write_windows(writer, scored);
      } catch (...) {
        fail(std::current_exception());
        scored.close();  // the model stage's next hand-over fails, and so it stops
        read.close();
      }
    });
    try {
      while (std::optional<StagedWindow> staged = read.pop()) {
        score_window(staged->window);
        stage_.after_request();
        if (!scored.push(std::move(*staged))) break;
      }
    } catch (...) {
      fail(std::current_exception());
      read.close();
    }
    scored.close();
    reading.join();
    writing.join();
    if (failure) std::rethrow_exception(failure);
  }

  // Windows of at most batching.window sequences that never straddle a block (JobConfig).
  void read_windows(JsonlReader& reader, BoundedQueue<StagedWindow>& queue) {
    InputLine line;
    StagedWindow staged;
    const auto hand_over = [&] {
      if (staged.window.records.empty()) return true;
      const bool taken = queue.push(std::move(staged));
      staged = StagedWindow();
      return taken;
    };
    staged.next = {reader.next_line_number(), reader.offset()};
    while (reader.next(line)) {
      if ((line.number - 1) % config_.job.block_lines == 0 && !hand_over()) return;
      add_line(staged.window, line, config_.task.kind, adapter_);
      staged.next = {reader.next_line_number(), reader.offset()};
      if (staged.window.sequences.size() >= static_cast<size_t>(config_.batching.window) &&
          !hand_over()) {
        return;
      }
    }
    hand_over();
  }

  void write_windows(JsonlWriter& writer, BoundedQueue<StagedWindow>& queue) {
    while (std::optional<StagedWindow> staged = queue.pop()) {
      // A failpoint kills the job where it would have reached the line: every window before it
      // written and checkpointed, nothing of its own window written.
      for (const PendingRecord& pending : staged->window.records) failpoint_at_line(pending.line);
      for (const PendingRecord& pending : staged->window.records) {
        writer.write(output_of(pending));
      }
      if (!part_.checkpoint_path.empty()) {
        writer.sync();
        Checkpoint checkpoint;
        checkpoint.identity = part_.identity;
        checkpoint.numerics = part_.numerics;
        checkpoint.range = part_.range;
        checkpoint.next_line = staged->next.line;
        checkpoint.next_offset = staged->next.offset;
        checkpoint.output_bytes = writer.bytes_written();
        checkpoint.records = summary_.records;
        checkpoint.error_records = summary_.error_records;
        checkpoint.pairs = summary_.pairs;
        write_checkpoint(part_.checkpoint_path, checkpoint);
      }
      if (part_.on_window) part_.on_window(summary_.records);
    }
  }

  void score_window(Window& window) {
    std::vector<const Encoding*> sequences;
    sequences.reserve(window.sequences.size());
    for (const auto& [record, index] : window.sequences) {
      sequences.push_back(&window.records[record].plan[index].encoding);
    }
    size_t scored = 0;
    BatchOutcome outcome = stage_.run(sequences, [&](const BatchReport& batch) {
      model_seconds_ += batch.seconds;
      summary_.batches += 1;
      summary_.real_tokens += static_cast<int64_t>(batch.real_tokens);
      summary_.padded_tokens += static_cast<int64_t>(batch.padded_tokens);
      scored += batch.sequences;
      progress_.update(static_cast<double>(records_scored_ - summary_.resumed_records) +
                       static_cast<double>(window.records.size() * scored) /
                           static_cast<double>(sequences.size()));
    });
    for (size_t i = 0; i < sequences.size(); ++i) {
      const auto [record, index] = window.sequences[i];
      PendingRecord& pending = window.records[record];
      if (!outcome.errors[i].empty()) {
        pending.error = std::move(outcome.errors[i]);
      } else {
        pending.results[index] = std::move(outcome.results[i]);
      }
    }
    summary_.sequences += static_cast<int64_t>(sequences.size());
    records_scored_ += static_cast<int64_t>(window.records.size());
  }

  OutputRecord output_of(const PendingRecord& pending) {
    summary_.records += 1;
    if (!pending.record || !pending.error.empty()) {
      summary_.error_records += 1;
      spdlog::debug("line {}: {}", pending.line, pending.error);
      return error_record(pending.line, pending.id, pending.error);
    }
    summary_.pairs += static_cast<int64_t>(std::max<size_t>(pending.record->passages.size(), 1));
    return output_line(*pending.record,
                       adapter_.finish(*pending.record, pending.plan, pending.results),
                       config_.task);
  }

  const Config& config_;
  FamilyAdapter& adapter_;
  DeviceMemory& memory_;
  const JobPart& part_;
  ProgressReporter progress_;
  ModelStage stage_;
  // The writing stage owns summary_'s record and pair counts; the model stage the rest, and these.
  JobSummary summary_;
  int64_t records_scored_ = 0;
  double model_seconds_ = 0;
};

}  // namespace

JobSummary run_batch_job(const Config& config, FamilyAdapter& adapter, DeviceMemory& memory,
                         const JobPart& part) {
  check<std::logic_error>(config.job.block_lines > 0,
                          "job.block_lines auto must be resolved from the input (scan_input) "
                          "before a job runs");
  return JobRunner(config, adapter, memory, part).run();
}

}  // namespace engine
