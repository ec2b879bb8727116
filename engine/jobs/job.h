// The one place that prepares and runs a job, called the same way by `engine --config`, by each
// rank of a cluster job, by each worker of `engine launch`, by the tests (and later by a server):
//
//   open_config   config file + --set           -> Config (log level set)
//   plan_job      + the bundle's manifest, the family's options (model.options), the input scanned
//                                               -> JobPlan: what the job is, no weights loaded
//   load_runtime  threads, memory backend, bundle on its device, family adapter
//                                               -> JobRuntime
//   open_job      load_runtime, then plan_job   -> OpenJob, for a job run in this process
//   run_job / run_rank / merge_job / launch_job / run_worker
//
// engine/cli only parses arguments, calls these and prints.
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/config/config.h"
#include "engine/io/input_scan.h"
#include "engine/jobs/batch_job.h"
#include "engine/jobs/cluster_env.h"
#include "engine/memory/device_memory.h"
#include "engine/runtime/family_adapter.h"
#include "engine/runtime/model_bundle.h"

namespace engine {

// Where a job's config came from: the file and the --set overrides, in order.
struct JobSource {
  std::string config_file;
  std::vector<std::string> overrides;
};

// Reads and validates the config and sets the log level from it. Throws ConfigError.
Config open_config(const JobSource& source);

// What a job is, from its config, the bundle's manifest and one pass over its input: no weights
// are loaded. config.job.block_lines is resolved (auto -> from the input's line count) and the
// identity records it, so every process of the job makes the same blocks.
struct JobPlan {
  JobSource source;
  Config config;
  Manifest manifest;
  std::shared_ptr<const FamilyOptions> family_options;  // model.options, read by the family
  InputScan scan;
  nlohmann::json identity;  // job_identity.h: what a checkpoint or a part belongs to
};
JobPlan plan_job(const JobSource& source);

// The model side of a job, ready to run batches.
struct JobRuntime {
  Config config;  // what it was loaded for; the adapter refers to its task
  ModelBundle bundle;
  std::shared_ptr<const FamilyOptions> family_options;
  std::unique_ptr<FamilyAdapter> adapter;
  std::unique_ptr<DeviceMemory> memory;
  int threads = 1;
};
// Sets LibTorch's thread count (model.threads, or every CPU this process may use), installs the
// memory backend (first, so that the model's own tensors count against memory.limit), loads the
// bundle, empties the cache (casting at load frees whole tensors), reads the family's options
// and makes its adapter through the registry.
std::unique_ptr<JobRuntime> load_runtime(const Config& config);

// A job this process runs itself: the runtime loaded first (a broken bundle is reported as its
// loader reports it, before the input is read), then the job planned: config, bundle, family
// adapter, plan, as `engine --config` has always done it.
struct OpenJob {
  JobPlan plan;
  std::unique_ptr<JobRuntime> runtime;
};
OpenJob open_job(const JobSource& source);

// The whole input into io.output_path by this process, resumable from
// "<output>.checkpoint".
JobSummary run_job(const JobPlan& plan, JobRuntime& runtime);

// `rank`'s share of the blocks, each into its part in "<output>.parts/" (job_parts.h).
JobSummary run_rank(const JobPlan& plan, JobRuntime& runtime, const ClusterRank& rank);
// The --set a rank adds for itself: the GPU of its local rank when every rank sees every GPU
// (torchrun), and its share of the node's CPUs when model.threads is auto.
std::vector<std::string> rank_overrides(const JobSource& source, const ClusterRank& rank);

// The parts of a job run in pieces, checked and joined in input order into io.output_path.
void merge_job(const JobPlan& plan);

// `engine launch`: the pending blocks on one worker process per device of `devices`
// (plan_workers in launcher.h), then the merge. `engine_binary` is the executable the workers
// run (`engine worker`).
JobSummary launch_job(const JobPlan& plan, const std::string& devices,
                      const std::string& engine_binary);

// `engine worker`: loads the model, says "ready", then runs the blocks read from `in`, sending
// the protocol's messages (worker_protocol.h) through `send`. Returns at the end of `in`.
void run_worker(const JobSource& source, std::istream& in,
                const std::function<void(const std::string&)>& send);

}  // namespace engine
