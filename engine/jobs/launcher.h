// `engine launch`: one worker process per device, each running blocks of the input handed to it
// one at a time, over a pipe. A worker that dies (crash, SIGKILL, the kernel's out-of-memory
// killer) has its block run again by the next free worker, resumed from the block's checkpoint,
// up to job.max_retries times; past that the launch fails naming the block. Nothing is written
// twice: a block's part is only ever written through its checkpoint (docs/jobs.md).
//
// The launcher and its workers speak the line protocol of worker_protocol.h; a worker whose
// message is truncated, garbled or out of turn is stopped and its block run again, as for a crash.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/io/input_scan.h"
#include "engine/jobs/batch_job.h"

namespace engine {

// Where one worker runs.
struct WorkerSlot {
  std::string name;       // "cpu:0", "cuda:1"
  int gpu = -1;           // the GPU it alone sees (CUDA_VISIBLE_DEVICES); -1 for a CPU worker
  int threads = 1;        // its intra-op threads
  std::vector<int> cpus;  // the cores it is pinned to; empty: not pinned
};

// Slots for --devices: "auto" (every visible GPU, else one CPU worker), "cpu" or "cpu:N" (N CPU
// workers splitting this process's cores), or GPU indices "0,1,3" / "cuda:0,cuda:1".
// `threads` > 0 fixes each worker's threads; 0 splits the cores. Throws ConfigError.
std::vector<WorkerSlot> plan_workers(const std::string& devices, int threads);

struct LaunchOptions {
  std::string engine_binary;
  std::string config_file;
  std::vector<std::string> overrides;  // the user's --set, passed on to every worker
  std::vector<WorkerSlot> slots;
  int max_retries = 2;
  double progress_interval_s = 5;
  int64_t total_lines = 0;  // for the progress line
  int64_t done_lines = 0;   // lines of blocks complete before this launch
};

// Runs `blocks` on workers in the slots and returns their summaries added up (seconds: the
// launch's wall time). Throws std::runtime_error naming the block that failed too often, and
// ConfigError when a worker stopped on a configuration error (exit status 2).
JobSummary run_workers(const LaunchOptions& options, const std::vector<InputBlock>& blocks);

}  // namespace engine
