// The engine under a real scheduler: a single-node Slurm (slurmctld, slurmd and munge from
// Debian's packages, on localhost, all state in a temporary folder; tools/slurm_local.sh) runs a
// two-task step of `engine --config F`, and `engine merge` joins the two ranks' parts. The output
// must be byte for byte what one process writes. Skips, saying why, only when the daemons cannot
// start here.
#include <filesystem>

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::fixture_path;
using testing::read_file;
using testing::run_command;
using testing::write_file;

// A private cluster for the length of one test.
class LocalSlurm {
 public:
  LocalSlurm() {
    // munged's socket path must stay under 108 bytes: a short folder of its own.
    char folder[] = "/tmp/engine-slurm-XXXXXX";
    if (mkdtemp(folder) == nullptr) throw std::runtime_error("mkdtemp failed");
    folder_ = folder;
    const auto started = run_command(script() + " start " + folder_);
    started_ = started.status == 0;
    message_ = started.output;
  }
  ~LocalSlurm() {
    run_command(script() + " stop " + folder_);
    std::error_code ignored;
    std::filesystem::remove_all(folder_, ignored);
  }

  bool started() const { return started_; }
  const std::string& message() const { return message_; }
  // `command` with the cluster's configuration in its environment.
  testing::CommandResult run(const std::string& command) const {
    return run_command("SLURM_CONF=" + folder_ + "/etc/slurm.conf " + command);
  }

 private:
  static std::string script() { return std::string(ENGINE_SOURCE_DIR) + "/tools/slurm_local.sh"; }

  std::string folder_;
  bool started_ = false;
  std::string message_;
};

TEST(SlurmTest, ATwoTaskStepAndMergeWriteWhatOneProcessWrites) {
  if (run_command("command -v srun slurmd slurmctld munged").status != 0) {
    GTEST_SKIP() << "Slurm is not installed (tools/setup.sh installs slurmctld, slurmd, "
                    "slurm-client and munge)";
  }
  const LocalSlurm slurm;
  if (!slurm.started()) {
    GTEST_SKIP() << "the Slurm daemons could not start on this machine:\n" << slurm.message();
  }
  testing::TempDir dir;
  std::string input;
  const auto pairs = testing::read_lines(fixture_path("pairs.jsonl"));
  for (int copy = 0; copy < 5; ++copy) {
    for (const auto& pair : pairs) input += pair + "\n";
  }
  write_file(dir.path("in.jsonl"), input);
  write_file(dir.path("job.yaml"),
             testing::job_config(fixture_path("xlmr_tiny"), dir.path("in.jsonl"),
                                 dir.path("out.jsonl"), "score") +
                 "job:\n  block_lines: 32\n");
  const std::string engine = testing::engine_binary() + " --config " + dir.path("job.yaml");
  ASSERT_EQ(run_command(engine + " --set output.path=" + dir.path("single.jsonl")).status, 0);

  const auto step = slurm.run("timeout 300 srun --ntasks=2 --cpus-per-task=1 " + engine +
                              " --set logging.level=info");
  ASSERT_EQ(step.status, 0) << step.output;
  EXPECT_NE(step.output.find("rank 0 of 2 (slurm)"), std::string::npos) << step.output;
  EXPECT_NE(step.output.find("rank 1 of 2 (slurm)"), std::string::npos) << step.output;
  EXPECT_FALSE(std::filesystem::exists(dir.path("out.jsonl"))) << "the ranks write parts only";

  const auto merged =
      run_command(testing::engine_binary() + " merge --config " + dir.path("job.yaml"));
  ASSERT_EQ(merged.status, 0) << merged.output;
  EXPECT_EQ(read_file(dir.path("out.jsonl")), read_file(dir.path("single.jsonl")));
}

}  // namespace
}  // namespace engine
