// The batch job: JSONL in, scores out, one output line per input line, in input order.
// Sequences are gathered in windows, sorted by length and cut into batches under the token
// budget, scored, and put back with their records. Windows never straddle a block of
// job.block_lines lines, so a block's output does not depend on where the run started; after
// every window the output is synced and a checkpoint written, so a killed run goes on from there.
// Reading and tokenizing, the model, and writing are three threads, a window apart.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/config/config.h"
#include "engine/io/input_scan.h"
#include "engine/jobs/model_stage.h"
#include "engine/memory/device_memory.h"
#include "engine/runtime/family_adapter.h"

namespace engine {

struct JobSummary {
  int64_t records = 0;
  int64_t error_records = 0;
  int64_t pairs = 0;  // (query, passage) pairs, or texts for embed
  int64_t sequences = 0;
  int64_t batches = 0;
  int64_t real_tokens = 0;
  int64_t padded_tokens = 0;
  double seconds = 0;
  double warmup_seconds = 0;  // of `seconds`, the memory.warmup pass's (the model's first call)
  // Of `seconds` after the warm-up, how long the model stage ran batches; reading, tokenizing and
  // writing run on threads of their own beside it (the rest is the model waiting for them).
  double model_seconds = 0;
  MemoryStats memory;
  int64_t forward_passes = 0;
  int64_t out_of_memory = 0;  // errors recovered from by splitting the batch
  int64_t budget_splits = 0;  // batches split before running because of memory.budget
  int64_t cache_emptied = 0;
  int64_t peak_resident = 0;  // the process's resident peak (VmHWM), load included
  // Of records and pairs above, how many a run before a restart had written already.
  int64_t resumed_records = 0;
  int64_t resumed_pairs = 0;
  nlohmann::json numerics;  // how the run computed (job_identity.h run_numerics); null: unknown
};

// One piece of a job: which lines to read, where to write them, where to checkpoint.
struct JobPart {
  InputRange range;             // the whole input by default
  std::string output_path;      // written as <output_path>.partial, renamed when complete
  std::string checkpoint_path;  // empty: no checkpoints
  nlohmann::json identity;      // recorded in checkpoints; a checkpoint of another is refused
  // How this run computes (job_identity.h run_numerics), recorded in checkpoints; resuming one
  // written with other numerics is allowed, with a warning that the last digits may differ.
  nlohmann::json numerics;
  // Called after every window with the records of this part written so far.
  std::function<void(int64_t records)> on_window;
};

// One part, with config.job.block_lines resolved (positive; job.h's plan_job resolves it). With a
// checkpoint path and config.job.resume, a checkpoint left there by a killed run of the same part
// is continued; one of another job is refused with ConfigError saying what changed. The checkpoint
// is removed once the output is complete.
JobSummary run_batch_job(const Config& config, FamilyAdapter& adapter, DeviceMemory& memory,
                         const JobPart& part);

// Adds `part`'s counts to `total` (memory peaks: the larger), for jobs run in pieces.
void add_summary(JobSummary& total, const JobSummary& part);
JobSummary summary_from_json(const nlohmann::json& json);

// The closing lines on stderr: records, error records, pairs/s, tokens/s, padding, peak memory.
// `kind` names what was counted: pairs for rerank and score, texts for embed.
// `memory_name` says where the memory figures are from (DeviceMemory::name()).
void log_summary(const JobSummary& summary, const std::string& memory_name, TaskKind kind);

// The summary as a JSON object with the field names above (memory under "memory"), for
// `engine --summary FILE`, the launcher and benchmark programs.
nlohmann::json summary_json(const JobSummary& summary);

}  // namespace engine
