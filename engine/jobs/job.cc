#include "engine/jobs/job.h"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "engine/common/error.h"
#include "engine/common/failpoint.h"
#include "engine/io/checkpoint.h"
#include "engine/jobs/job_identity.h"
#include "engine/jobs/job_parts.h"
#include "engine/jobs/launcher.h"
#include "engine/jobs/worker_protocol.h"
#include "engine/runtime/devices.h"

namespace engine {

Config open_config(const JobSource& source) {
  Config config = load_config(source.config_file, source.overrides);
  spdlog::set_level(spdlog::level::from_str(config.logging.level));
  return config;
}

JobPlan plan_job(const JobSource& source) {
  JobPlan plan;
  plan.source = source;
  plan.config = open_config(source);
  plan.manifest = read_manifest(plan.config.model.path);
  plan.family_options = read_family_options(
      plan.manifest.family, {*plan.config.model.family_options, plan.manifest, plan.config.task});
  plan.scan = scan_input(plan.config.io.input_path, plan.config.job.block_lines);
  plan.config.job.block_lines = plan.scan.block_lines;
  plan.identity = job_identity(plan.config, plan.manifest, *plan.family_options, plan.scan);
  return plan;
}

std::unique_ptr<JobRuntime> load_runtime(const Config& config) {
  auto runtime = std::make_unique<JobRuntime>();
  runtime->config = config;
  runtime->threads = thread_count(config.model.threads);
  at::set_num_threads(runtime->threads);
  runtime->memory = make_device_memory(resolve_device(config.model.device), config.memory.limit);
  runtime->bundle = load_bundle(config.model);
  runtime->memory->empty_cache();
  const Manifest& manifest = runtime->bundle.manifest;
  runtime->family_options = read_family_options(
      manifest.family, {*runtime->config.model.family_options, manifest, runtime->config.task});
  runtime->adapter = make_adapter(
      manifest.family, {runtime->bundle, runtime->config.task, *runtime->family_options});
  return runtime;
}

OpenJob open_job(const JobSource& source) {
  OpenJob job;
  job.runtime = load_runtime(open_config(source));
  job.plan = plan_job(source);
  return job;
}

namespace {

// With model.threads auto, a run that resumes a checkpoint computes with the thread count of the
// run that left it, so that its output is the bytes an uninterrupted run writes (the numerics in
// job_identity.h); a count this process cannot have without oversubscribing its CPUs is not
// taken, and resuming then warns which lines may differ.
void keep_recorded_threads(const Config& config, const std::string& checkpoint_path,
                           JobRuntime& runtime) {
  if (!config.job.resume || config.model.threads > 0 || !runtime.bundle.device.is_cpu()) return;
  const std::optional<Checkpoint> checkpoint = read_checkpoint(checkpoint_path);
  if (!checkpoint || !checkpoint->numerics.is_object()) return;
  const int recorded = checkpoint->numerics.value("threads", 0);
  if (recorded <= 0 || recorded == runtime.threads || recorded > available_cpus()) return;
  at::set_num_threads(recorded);
  runtime.threads = recorded;
  spdlog::info(
      "resuming with {} thread(s), as the run that left '{}' computed (model.threads is auto), "
      "so that the output is the bytes of an uninterrupted run",
      recorded, checkpoint_path);
}

}  // namespace

JobSummary run_job(const JobPlan& plan, JobRuntime& runtime) {
  const Config& config = plan.config;
  JobPart part;
  part.range = {1, plan.scan.lines, 0, plan.scan.bytes};
  part.output_path = config.io.output_path;
  part.checkpoint_path = config.io.output_path + ".checkpoint";
  part.identity = plan.identity;
  keep_recorded_threads(config, part.checkpoint_path, runtime);
  part.numerics = run_numerics(runtime.bundle.device, runtime.threads);
  spdlog::info("model {} ({}) on {} in {}, {} threads; task {} from {}",
               runtime.bundle.manifest.directory, runtime.bundle.manifest.family,
               runtime.bundle.device.str(), dtype_name(runtime.bundle.dtype), runtime.threads,
               task_name(config.task.kind), config.io.input_path);
  JobSummary summary = run_batch_job(config, *runtime.adapter, *runtime.memory, part);
  log_summary(summary, runtime.memory->name(), config.task.kind);
  spdlog::info("output: {}", config.io.output_path);
  return summary;
}

std::vector<std::string> rank_overrides(const JobSource& source, const ClusterRank& rank) {
  const Config config = load_config(source.config_file, source.overrides);
  std::vector<std::string> overrides = source.overrides;
  if (const std::optional<std::string> device = rank_device(config.model.device, rank.local_rank)) {
    overrides.push_back("model.device=" + *device);
  }
  if (config.model.threads == 0) {
    overrides.push_back(fmt::format("model.threads={}", thread_count(0, rank.local_world_size)));
  }
  return overrides;
}

JobSummary run_rank(const JobPlan& plan, JobRuntime& runtime, const ClusterRank& rank) {
  const Config& config = plan.config;
  JobParts parts(config.io.output_path);
  parts.claim(plan.identity);
  const std::vector<InputBlock> mine = blocks_of_rank(plan.scan.blocks, rank.rank, rank.world_size);
  spdlog::info("rank {} of {} ({}): {} of {} blocks on {}, {} threads", rank.rank, rank.world_size,
               rank.source, mine.size(), plan.scan.blocks.size(), runtime.bundle.device.str(),
               runtime.threads);
  JobSummary total;
  for (const InputBlock& block : mine) {
    if (parts.complete(block)) {
      total.records += block.range.lines;
      total.resumed_records += block.range.lines;
      continue;
    }
    JobPart part = parts.part(block, plan.identity);
    part.numerics = run_numerics(runtime.bundle.device, runtime.threads);
    add_summary(total, run_batch_job(config, *runtime.adapter, *runtime.memory, part));
  }
  log_summary(total, runtime.memory->name(), config.task.kind);
  spdlog::info(
      "rank {} wrote its parts in {}; once every rank has finished, `engine merge` "
      "with the same --config and --set writes {}",
      rank.rank, parts.folder(), config.io.output_path);
  return total;
}

void merge_job(const JobPlan& plan) {
  JobParts(plan.config.io.output_path).merge(plan.scan, plan.identity, plan.config.io.output_path);
  spdlog::info("merged {} parts ({} lines) into {}", plan.scan.blocks.size(), plan.scan.lines,
               plan.config.io.output_path);
}

JobSummary launch_job(const JobPlan& plan, const std::string& devices,
                      const std::string& engine_binary) {
  const Config& config = plan.config;
  JobParts parts(config.io.output_path);
  parts.claim(plan.identity);
  const std::vector<InputBlock> pending = parts.pending(plan.scan);

  LaunchOptions options;
  options.engine_binary = engine_binary;
  options.config_file = plan.source.config_file;
  options.overrides = plan.source.overrides;
  options.slots = plan_workers(devices, config.model.threads);
  options.max_retries = config.job.max_retries;
  options.progress_interval_s = config.logging.progress_interval_s;
  options.total_lines = plan.scan.lines;
  options.done_lines = plan.scan.lines;
  for (const InputBlock& block : pending) options.done_lines -= block.range.lines;
  spdlog::info("launch: {} lines in {} blocks ({} to run, {} done before) on {} worker(s)",
               plan.scan.lines, plan.scan.blocks.size(), pending.size(),
               plan.scan.blocks.size() - pending.size(),
               std::min(options.slots.size(), std::max<size_t>(pending.size(), 1)));

  JobSummary summary = run_workers(options, pending);
  summary.records += options.done_lines;
  summary.resumed_records += options.done_lines;
  parts.merge(plan.scan, plan.identity, config.io.output_path);
  log_summary(summary, fmt::format("{} worker(s)", options.slots.size()), config.task.kind);
  spdlog::info("output: {}", config.io.output_path);
  return summary;
}

void run_worker(const JobSource& source, std::istream& in,
                const std::function<void(const std::string&)>& send) {
  Config config = open_config(source);
  std::unique_ptr<JobRuntime> runtime = load_runtime(config);
  JobParts parts(config.io.output_path);
  const nlohmann::json identity = parts.recorded_identity();
  // The launcher resolved job.block_lines when it scanned the input; its identity records it.
  config.job.block_lines = identity.at("settings").at("job.block_lines").get<int64_t>();
  send(encode_ready());
  for (std::string line; std::getline(in, line);) {
    const InputBlock block = decode_block(line);
    JobPart part = parts.part(block, identity);
    part.numerics = run_numerics(runtime->bundle.device, runtime->threads);
    part.on_window = [&](int64_t records) { send(encode_progress(block.index, records)); };
    const JobSummary summary = run_batch_job(config, *runtime->adapter, *runtime->memory, part);
    std::string done = encode_done(block.index, summary);
    if (failpoint_garble_done(block.index)) done = done.substr(0, done.size() / 2) + "\n";
    send(done);
  }
}

}  // namespace engine
