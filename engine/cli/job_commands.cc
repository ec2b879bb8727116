// The commands that run jobs: a single process (resumable), one rank of a cluster job, the merge
// of a cluster job's parts, `engine launch` and the workers it starts.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <spdlog/spdlog.h>

#include "engine/cli/commands.h"
#include "engine/cli/prepared_job.h"
#include "engine/common/error.h"
#include "engine/io/checkpoint.h"
#include "engine/jobs/batch_job.h"
#include "engine/jobs/cluster_env.h"
#include "engine/jobs/job_identity.h"
#include "engine/jobs/job_parts.h"
#include "engine/jobs/launcher.h"
#include "engine/memory/cuda_backend.h"

namespace engine {
namespace {

void write_summary(const JobSummary& summary, const std::string& summary_file) {
  if (summary_file.empty()) return;
  std::ofstream stream(summary_file);
  stream << summary_json(summary).dump(2) << "\n";
  check<ConfigError>(stream.good(), "cannot write the summary to '{}'", summary_file);
}

// The identity of the job `config` describes, reading only the bundle's manifest and the input.
struct JobInput {
  InputScan scan;
  nlohmann::json identity;
};

// Scans the input and resolves job.block_lines auto into `config` (the same size in every process
// of the job, from the input alone), which the job's identity then records.
JobInput scan_job(Config& config, const Manifest& manifest) {
  JobInput input;
  input.scan = scan_input(config.io.input_path, config.job.block_lines);
  config.job.block_lines = input.scan.block_lines;
  input.identity = job_identity(config, manifest, input.scan);
  return input;
}

// A rank's device and threads: torchrun starts one process per GPU of a node, all seeing every
// GPU, so each takes the GPU of its local rank; Slurm's --gpus-per-task shows each task its own.
// CPU ranks on one node split its cores.
std::vector<std::string> rank_overrides(const std::string& config_file,
                                        std::vector<std::string> overrides,
                                        const ClusterRank& rank) {
  const Config config = load_config(config_file, overrides);
  const std::string& device = config.model.device;
  if (device == "auto" || device == "cuda") {
    const int gpus = cuda_device_count();
    if (gpus > 1) overrides.push_back(fmt::format("model.device=cuda:{}", rank.local_rank % gpus));
  }
  if (config.model.threads == 0) {
    overrides.push_back(
        fmt::format("model.threads={}", std::max(1, available_cpus() / rank.local_world_size)));
  }
  return overrides;
}

int run_rank(const std::string& config_file, const std::vector<std::string>& overrides,
             const ClusterRank& rank, const std::string& summary_file) {
  auto job = prepare_job(config_file, rank_overrides(config_file, overrides, rank));
  const JobInput input = scan_job(job->config, job->bundle.manifest);
  JobParts parts(job->config.io.output_path);
  parts.claim(input.identity);
  const std::vector<InputBlock> mine =
      blocks_of_rank(input.scan.blocks, rank.rank, rank.world_size);
  spdlog::info("rank {} of {} ({}): {} of {} blocks on {}, {} threads", rank.rank, rank.world_size,
               rank.source, mine.size(), input.scan.blocks.size(), job->bundle.device.str(),
               job->threads);
  JobSummary total;
  for (const InputBlock& block : mine) {
    if (parts.complete(block)) {
      total.records += block.range.lines;
      total.resumed_records += block.range.lines;
      continue;
    }
    add_summary(total, run_batch_job(job->config, *job->adapter, *job->memory,
                                     parts.part(block, input.identity)));
  }
  log_summary(total, job->memory->name(), job->config.task.kind);
  write_summary(total, summary_file);
  spdlog::info(
      "rank {} wrote its parts in {}; once every rank has finished, `engine merge` "
      "with the same --config and --set writes {}",
      rank.rank, parts.folder(), job->config.io.output_path);
  return 0;
}

int run_single(const std::string& config_file, const std::vector<std::string>& overrides,
               const std::string& summary_file) {
  auto job = prepare_job(config_file, overrides);
  spdlog::info("model {} ({}) on {} in {}, {} threads; task {} from {}",
               job->bundle.manifest.directory, job->bundle.manifest.family,
               job->bundle.device.str(), dtype_name(job->bundle.dtype), job->threads,
               task_name(job->config.task.kind), job->config.io.input_path);
  const JobInput input = scan_job(job->config, job->bundle.manifest);
  JobPart part;
  part.range = {1, input.scan.lines, 0, input.scan.bytes};
  part.output_path = job->config.io.output_path;
  part.checkpoint_path = job->config.io.output_path + ".checkpoint";
  part.identity = input.identity;
  JobSummary summary = run_batch_job(job->config, *job->adapter, *job->memory, part);
  log_summary(summary, job->memory->name(), job->config.task.kind);
  spdlog::info("output: {}", job->config.io.output_path);
  write_summary(summary, summary_file);
  return 0;
}

// A block handed over by the launcher: "block INDEX FIRST_LINE LINES BEGIN END".
InputBlock parse_block(const std::string& line) {
  std::istringstream words(line);
  std::string kind;
  InputBlock block;
  words >> kind >> block.index >> block.range.first_line >> block.range.lines >>
      block.range.begin >> block.range.end;
  check<std::runtime_error>(kind == "block" && !words.fail(), "unexpected message '{}'", line);
  return block;
}

}  // namespace

int run_job_command(const std::string& config_file, const std::vector<std::string>& overrides,
                    const std::string& summary_file) {
  const ClusterRank rank = detect_cluster_rank();
  if (rank.distributed()) return run_rank(config_file, overrides, rank, summary_file);
  return run_single(config_file, overrides, summary_file);
}

int merge_command(const std::string& config_file, const std::vector<std::string>& overrides) {
  Config config = load_config(config_file, overrides);
  spdlog::set_level(spdlog::level::from_str(config.logging.level));
  const JobInput input = scan_job(config, read_manifest(config.model.path));
  JobParts(config.io.output_path).merge(input.scan, input.identity, config.io.output_path);
  spdlog::info("merged {} parts ({} lines) into {}", input.scan.blocks.size(), input.scan.lines,
               config.io.output_path);
  return 0;
}

int launch_command(const std::string& config_file, const std::vector<std::string>& overrides,
                   const std::string& devices, const std::string& summary_file) {
  Config config = load_config(config_file, overrides);
  spdlog::set_level(spdlog::level::from_str(config.logging.level));
  const JobInput input = scan_job(config, read_manifest(config.model.path));
  JobParts parts(config.io.output_path);
  parts.claim(input.identity);
  const std::vector<InputBlock> pending = parts.pending(input.scan);

  LaunchOptions options;
  std::vector<char> self(4096);
  const ssize_t length = ::readlink("/proc/self/exe", self.data(), self.size() - 1);
  check<std::runtime_error>(length > 0, "cannot find the engine binary (/proc/self/exe)");
  options.engine_binary.assign(self.data(), static_cast<size_t>(length));
  options.config_file = config_file;
  options.overrides = overrides;
  options.slots = plan_workers(devices, config.model.threads);
  options.max_retries = config.job.max_retries;
  options.progress_interval_s = config.logging.progress_interval_s;
  options.total_lines = input.scan.lines;
  options.done_lines = input.scan.lines;
  for (const InputBlock& block : pending) options.done_lines -= block.range.lines;
  spdlog::info("launch: {} lines in {} blocks ({} to run, {} done before) on {} worker(s)",
               input.scan.lines, input.scan.blocks.size(), pending.size(),
               input.scan.blocks.size() - pending.size(),
               std::min(options.slots.size(), std::max<size_t>(pending.size(), 1)));

  JobSummary summary = run_workers(options, pending);
  summary.records += options.done_lines;
  summary.resumed_records += options.done_lines;
  parts.merge(input.scan, input.identity, config.io.output_path);
  log_summary(summary, fmt::format("{} worker(s)", options.slots.size()), config.task.kind);
  spdlog::info("output: {}", config.io.output_path);
  write_summary(summary, summary_file);
  return 0;
}

int worker_command(const std::string& config_file, const std::vector<std::string>& overrides) {
  // The protocol has stdout to itself: anything else printed there goes to stderr.
  std::FILE* protocol = fdopen(dup(STDOUT_FILENO), "w");
  check<std::runtime_error>(protocol != nullptr, "cannot open the launcher's pipe");
  dup2(STDERR_FILENO, STDOUT_FILENO);
  const auto send = [&](const std::string& message) {
    std::fputs((message + "\n").c_str(), protocol);
    std::fflush(protocol);
  };
  auto job = prepare_job(config_file, overrides);
  JobParts parts(job->config.io.output_path);
  const nlohmann::json identity = parts.recorded_identity();
  // The launcher resolved job.block_lines when it scanned the input; its identity records it.
  job->config.job.block_lines = identity.at("settings").at("job.block_lines").get<int64_t>();
  send("ready");
  for (std::string line; std::getline(std::cin, line);) {
    const InputBlock block = parse_block(line);
    JobPart part = parts.part(block, identity);
    part.on_window = [&](int64_t records) {
      send(fmt::format("progress {} {}", block.index, records));
    };
    const JobSummary summary = run_batch_job(job->config, *job->adapter, *job->memory, part);
    send(fmt::format("done {} {}", block.index, summary_json(summary).dump()));
  }
  return 0;
}

}  // namespace engine
