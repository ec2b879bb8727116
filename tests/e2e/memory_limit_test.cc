// A memory limit small enough that the first batch fails: the host backend's counting allocator
// refuses it with LibTorch's out-of-memory error, the job splits and retries, and every record
// still gets its output line with the scores of an unlimited run.
#include <gtest/gtest.h>

#include "engine/memory/counting_cpu_allocator.h"
#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::fixture_path;

TEST(MemoryLimitTest, EveryRecordIsAnsweredWhenTheFirstBatchRunsOutOfMemory) {
  testing::TempDir dir;
  const auto pairs = testing::read_lines(fixture_path("pairs.jsonl"));
  const std::vector<std::string> settings = {"batching.max_batch_size=64",
                                             "batching.max_tokens=100000"};
  JobSummary free_run;
  const auto expected =
      testing::run_job(fixture_path("xlmr_tiny"), pairs, "score", settings, dir, &free_run);
  ASSERT_EQ(expected.size(), pairs.size());
  EXPECT_EQ(free_run.out_of_memory, 0);

  // The weights stay allocated between runs of this process; the batches add the rest.
  const int64_t resident = CountingCpuAllocator::install().allocated();
  const int64_t batches_need = free_run.memory.peak_allocated - resident;
  ASSERT_GT(batches_need, 0);
  std::vector<std::string> limited = settings;
  limited.push_back("memory.limit=" + std::to_string(resident + batches_need / 4));
  JobSummary tight_run;
  const auto outputs =
      testing::run_job(fixture_path("xlmr_tiny"), pairs, "score", limited, dir, &tight_run);
  CountingCpuAllocator::install().set_limit(0);

  EXPECT_GT(tight_run.out_of_memory, 0) << "the limit must make the first batch fail";
  EXPECT_GT(tight_run.forward_passes, free_run.forward_passes);
  EXPECT_LE(tight_run.memory.peak_allocated, resident + batches_need / 4);
  ASSERT_EQ(outputs.size(), pairs.size()) << "one output line per input line";
  for (size_t i = 0; i < outputs.size(); ++i) {
    ASSERT_TRUE(outputs[i].contains("score")) << outputs[i].dump();
    EXPECT_NEAR(outputs[i].at("score").get<double>(), expected[i].at("score").get<double>(), 1e-5)
        << "pair " << i;
  }
}

TEST(MemoryLimitTest, ABudgetSplitsBatchesBeforeTheyFail) {
  testing::TempDir dir;
  const auto pairs = testing::read_lines(fixture_path("pairs.jsonl"));
  JobSummary free_run;
  testing::run_job(fixture_path("xlmr_tiny"), pairs, "score",
                   {"batching.max_batch_size=64", "batching.max_tokens=100000"}, dir, &free_run);
  const int64_t resident = CountingCpuAllocator::install().allocated();
  const int64_t budget = (free_run.memory.peak_allocated - resident) / 4;
  JobSummary budgeted;
  const auto outputs =
      testing::run_job(fixture_path("xlmr_tiny"), pairs, "score",
                       {"batching.max_batch_size=64", "batching.max_tokens=100000",
                        "batching.window=20", "memory.budget=" + std::to_string(budget)},
                       dir, &budgeted);
  EXPECT_EQ(outputs.size(), pairs.size());
  EXPECT_EQ(budgeted.out_of_memory, 0) << "no limit was set, nothing can fail";
  EXPECT_GT(budgeted.budget_splits, 0) << "later windows are split by the learned model";
}

TEST(MemoryLimitTest, WarmUpRunsTheLongestShapeFirstAndChangesNoScore) {
  testing::TempDir dir;
  const auto pairs = testing::read_lines(fixture_path("pairs.jsonl"));
  JobSummary plain, warmed;
  const auto expected = testing::run_job(fixture_path("xlmr_tiny"), pairs, "score",
                                         {"batching.max_batch_size=8"}, dir, &plain);
  const auto outputs =
      testing::run_job(fixture_path("xlmr_tiny"), pairs, "score",
                       {"batching.max_batch_size=8", "memory.warmup=true"}, dir, &warmed);
  EXPECT_EQ(warmed.forward_passes, plain.forward_passes + 1);
  // The warm-up batch is 8 sequences of 512 tokens, longer than any fixture batch.
  EXPECT_GE(warmed.memory.peak_allocated, plain.memory.peak_allocated);
  ASSERT_EQ(outputs.size(), expected.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    EXPECT_EQ(outputs[i].at("score"), expected[i].at("score")) << "pair " << i;
  }
}

}  // namespace
}  // namespace engine
