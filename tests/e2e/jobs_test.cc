// Resumable and split jobs, run as a user runs them: the engine binary on the tiny reranker, killed
// with SIGKILL and started again, launched on several CPU workers with some of them dying, and
// run as ranks whose parts are merged. Every output is compared byte for byte with one
// uninterrupted single process.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::fixture_path;
using testing::read_file;
using testing::run_command;
using testing::TempDir;
using testing::write_file;

std::string job_yaml(const TempDir& dir) {
  return testing::job_config(fixture_path("xlmr_tiny"), dir.path("in.jsonl"), dir.path("out.jsonl"),
                             "score") +
         "batching:\n  window: 32\njob:\n  block_lines: 64\n";
}

class JobsTest : public ::testing::Test {
 protected:
  // Ten times the fixture's 40 pairs, cut into blocks of 64 lines, scored in windows of 32; the
  // reference is one uninterrupted single process, run once for the suite.
  static void SetUpTestSuite() {
    std::string input;
    const auto pairs = testing::read_lines(fixture_path("pairs.jsonl"));
    for (int copy = 0; copy < 10; ++copy) {
      for (const auto& pair : pairs) input += pair + "\n";
    }
    input_ = new std::string(input);
    TempDir dir;
    write_file(dir.path("in.jsonl"), input);
    write_file(dir.path("job.yaml"), job_yaml(dir));
    const auto result = run_command(testing::engine_binary() + " --config " + dir.path("job.yaml"));
    reference_ = new std::string(result.status == 0 ? read_file(dir.path("out.jsonl"))
                                                    : "reference run failed: " + result.output);
  }

  void SetUp() override {
    write_file(dir_.path("in.jsonl"), *input_);
    write_file(dir_.path("job.yaml"), job_yaml(dir_));
    ASSERT_EQ(reference_->rfind("reference run failed", 0), std::string::npos) << *reference_;
  }

  testing::CommandResult engine(const std::string& arguments, const std::string& env = "") {
    return run_command(env + " " + testing::engine_binary() + " --config " + dir_.path("job.yaml") +
                       " " + arguments);
  }
  testing::CommandResult launch(const std::string& arguments, const std::string& env = "") {
    return run_command(env + " " + testing::engine_binary() + " launch --config " +
                       dir_.path("job.yaml") + " " + arguments);
  }
  std::string output() const { return read_file(dir_.path("out.jsonl")); }
  bool exists(const std::string& name) const { return std::filesystem::exists(dir_.path(name)); }

  TempDir dir_;
  static std::string* input_;
  static std::string* reference_;
};

std::string* JobsTest::input_ = nullptr;
std::string* JobsTest::reference_ = nullptr;

TEST_F(JobsTest, ASingleRunKilledWithSigkillGoesOnToTheSameBytes) {
  const int pid = testing::start_command(
      "exec " + testing::engine_binary() + " --config " + dir_.path("job.yaml"),
      dir_.path("killed.log"));
  // Killed once a checkpoint shows it is under way, and before it is done.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!exists("out.jsonl.checkpoint") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(exists("out.jsonl.checkpoint")) << read_file(dir_.path("killed.log"));
  ::kill(pid, SIGKILL);
  EXPECT_EQ(testing::wait_command(pid), 128 + SIGKILL);
  ASSERT_FALSE(exists("out.jsonl")) << "killed before the end: the output is still partial";

  const auto resumed = engine("--set logging.level=info");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from"), std::string::npos) << resumed.output;
  EXPECT_EQ(resumed.output.find("other numerics"), std::string::npos) << resumed.output;
  EXPECT_EQ(output(), *reference_) << "byte-identical to an uninterrupted run";
  EXPECT_FALSE(exists("out.jsonl.checkpoint")) << "a finished job leaves no checkpoint";
}

// The thread count is one of the numerics a checkpoint records (oneDNN, MKL and ATen's attention
// round some products differently with another count). With model.threads auto, the resumed run
// takes the killed run's count and writes the bytes of an uninterrupted run with that count.
TEST_F(JobsTest, AResumedRunKeepsTheThreadCountOfTheRunItContinues) {
  write_file(dir_.path("auto.yaml"),
             testing::job_config(fixture_path("xlmr_tiny"), dir_.path("in.jsonl"),
                                 dir_.path("one.jsonl"), "score") +
                 "batching:\n  window: 32\njob:\n  block_lines: 64\n");
  const std::string auto_threads = testing::engine_binary() + " --config " +
                                   dir_.path("auto.yaml") + " --set model.threads=auto";
  ASSERT_EQ(run_command(auto_threads + " --set model.threads=1").status, 0);
  const std::string one_thread = read_file(dir_.path("one.jsonl"));
  std::filesystem::remove(dir_.path("one.jsonl"));

  const auto killed =
      run_command("ENGINE_FAILPOINT=kill_at_line=170 " + auto_threads + " --set model.threads=1");
  ASSERT_EQ(killed.status, 128 + SIGKILL) << killed.output;
  const auto resumed = run_command(auto_threads + " --set logging.level=info");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming with 1 thread(s), as the run that left"),
            std::string::npos)
      << resumed.output;
  EXPECT_EQ(resumed.output.find("other numerics"), std::string::npos) << resumed.output;
  EXPECT_EQ(read_file(dir_.path("one.jsonl")), one_thread) << "the bytes of one uninterrupted run";
}

// A thread count set on purpose is honoured; the run says which lines may differ in their last
// digits from an uninterrupted run, and still writes every line once.
TEST_F(JobsTest, ResumingWithAnotherThreadCountSetOnPurposeWarnsWhatMayDiffer) {
  const auto killed = engine("--set model.threads=1", "ENGINE_FAILPOINT=kill_at_line=170");
  ASSERT_EQ(killed.status, 128 + SIGKILL) << killed.output;
  const auto resumed = engine("--set model.threads=2");
  ASSERT_EQ(resumed.status, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("computed with other numerics: threads (was 1, now 2)"),
            std::string::npos)
      << resumed.output;
  EXPECT_NE(resumed.output.find("from line 161 on may differ"), std::string::npos)
      << resumed.output;
  const auto lines = testing::read_lines(dir_.path("out.jsonl"));
  ASSERT_EQ(lines.size(), 400u);
  for (const std::string& line : lines) {
    EXPECT_TRUE(nlohmann::json::parse(line).contains("score")) << line;
  }
}

TEST_F(JobsTest, AChangedConfigOrInputIsRefusedRatherThanMixedIn) {
  const auto killed = engine("", "ENGINE_FAILPOINT=kill_at_line=170");
  ASSERT_EQ(killed.status, 128 + SIGKILL) << killed.output;
  ASSERT_TRUE(exists("out.jsonl.checkpoint"));

  const auto other_top_k = engine("--set task.top_k=3");
  EXPECT_EQ(other_top_k.status, 2) << other_top_k.output;
  EXPECT_NE(other_top_k.output.find("task.top_k (was 0, now 3)"), std::string::npos)
      << other_top_k.output;
  EXPECT_NE(other_top_k.output.find("was left by a different job"), std::string::npos);

  write_file(dir_.path("changed.jsonl"), read_file(dir_.path("in.jsonl")) + "{\"id\": 1}\n");
  const auto other_input = engine("--set input.path=" + dir_.path("changed.jsonl"));
  EXPECT_EQ(other_input.status, 2) << other_input.output;
  EXPECT_NE(other_input.output.find("input.sha256 (was"), std::string::npos) << other_input.output;
  EXPECT_FALSE(exists("out.jsonl"));

  // The same job goes on; job.resume: false starts it over. Both end as the reference.
  ASSERT_EQ(engine("").status, 0);
  EXPECT_EQ(output(), *reference_);
  ASSERT_EQ(engine("", "ENGINE_FAILPOINT=kill_at_line=170").status, 128 + SIGKILL);
  const auto over = engine("--set job.resume=false --set logging.level=info");
  ASSERT_EQ(over.status, 0) << over.output;
  EXPECT_EQ(over.output.find("resuming"), std::string::npos) << over.output;
  EXPECT_EQ(output(), *reference_);
}

TEST_F(JobsTest, ACorruptOrStaleCheckpointIsRefusedWithWhatToDo) {
  ASSERT_EQ(engine("", "ENGINE_FAILPOINT=kill_at_line=170").status, 128 + SIGKILL);
  const std::string checkpoint = read_file(dir_.path("out.jsonl.checkpoint"));
  write_file(dir_.path("out.jsonl.checkpoint"), checkpoint.substr(0, checkpoint.size() / 2));
  const auto corrupt = engine("");
  EXPECT_EQ(corrupt.status, 2) << corrupt.output;
  EXPECT_NE(corrupt.output.find("out.jsonl.checkpoint' is corrupt"), std::string::npos)
      << corrupt.output;
  EXPECT_NE(corrupt.output.find("delete it to start the job over"), std::string::npos);

  // The checkpoint promises more output than the partial file holds.
  write_file(dir_.path("out.jsonl.checkpoint"), checkpoint);
  write_file(dir_.path("out.jsonl.partial"), "{\"id\":0}\n");
  const auto short_output = engine("");
  EXPECT_EQ(short_output.status, 2) << short_output.output;
  EXPECT_NE(short_output.output.find("cannot resume"), std::string::npos) << short_output.output;
}

TEST_F(JobsTest, LaunchOnTwoWorkersWritesWhatOneProcessWrites) {
  const auto result = launch("--devices cpu:2 --set logging.level=info");
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("worker cpu:1"), std::string::npos) << result.output;
  EXPECT_EQ(output(), *reference_);
  EXPECT_FALSE(exists("out.jsonl.parts")) << "the parts are removed once merged";
}

// With no job settings the block size comes from the input (400 lines: 50 blocks of 8), so both
// workers get blocks, and the output is the bytes one process writes with the same settings.
TEST_F(JobsTest, WithoutJobSettingsEveryWorkerGetsBlocks) {
  write_file(dir_.path("job.yaml"),
             testing::job_config(fixture_path("xlmr_tiny"), dir_.path("in.jsonl"),
                                 dir_.path("out.jsonl"), "score") +
                 "batching:\n  window: 32\n");
  const auto single = engine("");
  ASSERT_EQ(single.status, 0) << single.output;
  const std::string one_process = output();
  std::filesystem::remove(dir_.path("out.jsonl"));
  const auto result = launch("--devices cpu:2 --set logging.level=info");
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_NE(result.output.find("launch: 400 lines in 50 blocks (50 to run, 0 done before) on 2 "
                               "worker(s)"),
            std::string::npos)
      << result.output;
  EXPECT_EQ(output(), one_process);
}

TEST_F(JobsTest, AWorkerKilledMidShardHasItsBlockFinishedByAnother) {
  // Line 170 is in block 2 (lines 129-192), after its first window (129-160) was checkpointed.
  const auto result = launch("--devices cpu:2 --set logging.level=info",
                             "ENGINE_FAILPOINT=kill_at_line=170,once=" + dir_.path("fired"));
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_TRUE(exists("fired")) << "the worker was killed";
  EXPECT_NE(result.output.find("was killed by signal 9"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("resuming from"), std::string::npos) << result.output;
  EXPECT_EQ(output(), *reference_) << "nothing lost, nothing written twice";
}

TEST_F(JobsTest, AWorkerThatGarblesAMessageIsStoppedAndItsBlockRunAgain) {
  // The worker running block 2 cuts its "done" message in half (worker_protocol.h).
  const auto result = launch("--devices cpu:2 --set logging.level=info",
                             "ENGINE_FAILPOINT=garble_done=2,once=" + dir_.path("fired"));
  ASSERT_EQ(result.status, 0) << result.output;
  EXPECT_TRUE(exists("fired")) << "the message was garbled";
  EXPECT_NE(result.output.find("broke the launcher's protocol: message 'done 2 {"),
            std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("SUMMARY_JSON is not JSON"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("while running block 2"), std::string::npos) << result.output;
  EXPECT_EQ(output(), *reference_) << "nothing lost, nothing written twice";
}

TEST_F(JobsTest, AShardWhoseWorkerKeepsFailingFailsTheLaunchNamingIt) {
  const auto result =
      launch("--devices cpu:2 --set job.max_retries=1", "ENGINE_FAILPOINT=kill_at_line=170");
  EXPECT_EQ(result.status, 1) << result.output;
  EXPECT_NE(result.output.find("block 2 (input lines 129-192) failed 2 times"), std::string::npos)
      << result.output;
  EXPECT_FALSE(exists("out.jsonl")) << "no output that is not complete";
  // Fixed (no failpoint), the same launch finishes from the parts already written.
  const auto again = launch("--devices cpu:2 --set job.max_retries=1 --set logging.level=info");
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_NE(again.output.find("done before"), std::string::npos) << again.output;
  EXPECT_EQ(output(), *reference_);
}

TEST_F(JobsTest, MoreWorkersThanRecordsAndAnEmptyInput) {
  write_file(dir_.path("three.jsonl"), testing::read_lines(dir_.path("in.jsonl"))[0] + "\n" +
                                           testing::read_lines(dir_.path("in.jsonl"))[1] + "\n" +
                                           testing::read_lines(dir_.path("in.jsonl"))[2] + "\n");
  const std::string three = "--set input.path=" + dir_.path("three.jsonl");
  ASSERT_EQ(engine(three + " --set output.path=" + dir_.path("three_ref.jsonl")).status, 0);
  const auto many = launch("--devices cpu:4 " + three);
  ASSERT_EQ(many.status, 0) << many.output;
  EXPECT_EQ(output(), read_file(dir_.path("three_ref.jsonl")));
  EXPECT_EQ(testing::read_lines(dir_.path("out.jsonl")).size(), 3u);

  write_file(dir_.path("empty.jsonl"), "");
  const std::string empty = "--set input.path=" + dir_.path("empty.jsonl");
  ASSERT_EQ(launch("--devices cpu:2 " + empty).status, 0);
  EXPECT_TRUE(exists("out.jsonl"));
  EXPECT_EQ(output(), "");
  std::filesystem::remove(dir_.path("out.jsonl"));
  ASSERT_EQ(engine(empty).status, 0);
  EXPECT_EQ(output(), "");
}

TEST_F(JobsTest, RanksWriteTheirPartsAndMergeJoinsThemInInputOrder) {
  // Rank 1 of 3 first: merge refuses while parts are missing, and names them.
  ASSERT_EQ(engine("", "RANK=1 WORLD_SIZE=3").status, 0);
  const auto early =
      run_command(testing::engine_binary() + " merge --config " + dir_.path("job.yaml"));
  EXPECT_EQ(early.status, 2) << early.output;
  EXPECT_NE(early.output.find("parts are not complete: block 0 (lines 1-64)"), std::string::npos)
      << early.output;
  // The rest under another world size: the blocks rank 1 wrote are kept, not run again.
  ASSERT_EQ(engine("", "RANK=0 WORLD_SIZE=2").status, 0);
  const auto second = engine("--set logging.level=info", "RANK=1 WORLD_SIZE=2");
  ASSERT_EQ(second.status, 0) << second.output;
  const auto merged =
      run_command(testing::engine_binary() + " merge --config " + dir_.path("job.yaml"));
  ASSERT_EQ(merged.status, 0) << merged.output;
  EXPECT_EQ(output(), *reference_);
  EXPECT_FALSE(exists("out.jsonl.parts"));
}

TEST_F(JobsTest, AFamilyOptionTypoStopsALaunchBeforeAnyWorkerStarts) {
  // The family reads model.options when the job is planned, before weights load or workers start.
  const auto result = launch("--devices cpu:2 --set model.options.labell=1");
  EXPECT_EQ(result.status, 2) << result.output;
  EXPECT_NE(result.output.find("--set model.options.labell: unknown key 'labell'"),
            std::string::npos)
      << result.output;
  EXPECT_EQ(result.output.find("started"), std::string::npos) << result.output;
  EXPECT_FALSE(exists("out.jsonl.parts"));
  // And a changed option is a different job: a resumed one is refused, naming it.
  ASSERT_EQ(engine("", "RANK=0 WORLD_SIZE=2").status, 0);
  const auto other = launch("--devices cpu:2 --set model.options.activation=sigmoid");
  EXPECT_EQ(other.status, 2) << other.output;
  EXPECT_NE(other.output.find("model.options.activation (was auto, now sigmoid)"),
            std::string::npos)
      << other.output;
}

TEST_F(JobsTest, PartsOfAnotherJobAreNeitherContinuedNorMerged) {
  ASSERT_EQ(engine("", "RANK=0 WORLD_SIZE=2").status, 0);
  const auto other = launch("--devices cpu:2 --set task.normalize=true");
  EXPECT_EQ(other.status, 2) << other.output;
  EXPECT_NE(other.output.find("holds the parts of a different job: task.normalize"),
            std::string::npos)
      << other.output;
  const auto merge = run_command(testing::engine_binary() + " merge --config " +
                                 dir_.path("job.yaml") + " --set task.normalize=true");
  EXPECT_EQ(merge.status, 2) << merge.output;
  EXPECT_NE(merge.output.find("task.normalize (was false, now true)"), std::string::npos)
      << merge.output;
}

}  // namespace
}  // namespace engine
