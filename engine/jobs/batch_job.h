// The batch job: JSONL in, scores out, one output line per input line, in input order.
// Sequences are gathered in windows, sorted by length and cut into batches under the token
// budget, scored, and put back with their records.
#pragma once

#include <cstdint>

#include "engine/config/config.h"
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
  MemoryStats memory;
  int64_t forward_passes = 0;
  int64_t out_of_memory = 0;   // errors recovered from by splitting the batch
  int64_t budget_splits = 0;   // batches split before running because of memory.budget
  int64_t cache_emptied = 0;
};

JobSummary run_batch_job(const Config& config, FamilyAdapter& adapter, DeviceMemory& memory);

// The closing lines on stderr: records, error records, pairs/s, tokens/s, padding, peak memory.
// `kind` names what was counted: pairs for rerank and score, texts for embed.
void log_summary(const JobSummary& summary, const DeviceMemory& memory, TaskKind kind);

}  // namespace engine
