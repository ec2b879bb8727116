// The commands that run jobs, on engine/jobs/job.h: a single process (resumable), one rank of a
// cluster job, the merge of a cluster job's parts, `engine launch` and the workers it starts.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "engine/cli/commands.h"
#include "engine/common/error.h"
#include "engine/jobs/cluster_env.h"
#include "engine/jobs/job.h"

namespace engine {
namespace {

void write_summary(const JobSummary& summary, const std::string& summary_file) {
  if (summary_file.empty()) return;
  std::ofstream stream(summary_file);
  stream << summary_json(summary).dump(2) << "\n";
  check<ConfigError>(stream.good(), "cannot write the summary to '{}'", summary_file);
}

std::string own_binary() {
  std::vector<char> self(4096);
  const ssize_t length = ::readlink("/proc/self/exe", self.data(), self.size() - 1);
  check<std::runtime_error>(length > 0, "cannot find the engine binary (/proc/self/exe)");
  return std::string(self.data(), static_cast<size_t>(length));
}

}  // namespace

int run_job_command(const std::string& config_file, const std::vector<std::string>& overrides,
                    const std::string& summary_file) {
  const ClusterRank rank = detect_cluster_rank();
  JobSource source{config_file, overrides};
  if (rank.distributed()) source.overrides = rank_overrides(source, rank);
  OpenJob job = open_job(source);
  const JobSummary summary =
      rank.distributed() ? run_rank(job.plan, *job.runtime, rank) : run_job(job.plan, *job.runtime);
  write_summary(summary, summary_file);
  return 0;
}

int merge_command(const std::string& config_file, const std::vector<std::string>& overrides) {
  merge_job(plan_job({config_file, overrides}));
  return 0;
}

int launch_command(const std::string& config_file, const std::vector<std::string>& overrides,
                   const std::string& devices, const std::string& summary_file) {
  const JobPlan plan = plan_job({config_file, overrides});
  write_summary(launch_job(plan, devices, own_binary()), summary_file);
  return 0;
}

int worker_command(const std::string& config_file, const std::vector<std::string>& overrides) {
  // The protocol has stdout to itself: anything else printed there goes to stderr.
  std::FILE* protocol = fdopen(dup(STDOUT_FILENO), "w");
  check<std::runtime_error>(protocol != nullptr, "cannot open the launcher's pipe");
  dup2(STDERR_FILENO, STDOUT_FILENO);
  run_worker({config_file, overrides}, std::cin, [&](const std::string& message) {
    std::fputs(message.c_str(), protocol);
    std::fflush(protocol);
  });
  return 0;
}

}  // namespace engine
