// A memory limit small enough that the first batch fails: the host backend's counting allocator
// refuses it with LibTorch's out-of-memory error, the job splits and retries, and every record
// still gets its output line with the scores of an unlimited run. For an encoder reranker scoring
// pairs, and for an LLM reranker ranking records whose passages share a prefix (run once).
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "engine/memory/counting_cpu_allocator.h"
#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::fixture_path;

struct Workload {
  const char* bundle;
  const char* records;  // a fixture of input lines
  const char* task;
  // The limit: what the largest batch needs, divided by this. Some of an LLM reranker's batches
  // hold one record's passages with their prefix run once, so a quarter would not hold even one
  // sequence.
  int divisor;
  const char* name;
};

void PrintTo(const Workload& workload, std::ostream* out) { *out << workload.name; }

// Every score of an output line, in input order (a rerank line's by passage index).
std::vector<double> scores_of(const nlohmann::json& output) {
  if (output.contains("score")) return {output.at("score").get<double>()};
  std::vector<double> scores(output.at("results").size());
  for (const auto& result : output.at("results")) {
    scores.at(result.at("index").get<size_t>()) = result.at("score").get<double>();
  }
  return scores;
}

class MemoryLimitTest : public ::testing::TestWithParam<Workload> {};

TEST_P(MemoryLimitTest, EveryRecordIsAnsweredWhenTheFirstBatchRunsOutOfMemory) {
  const Workload& workload = GetParam();
  testing::TempDir dir;
  const auto lines = testing::read_lines(fixture_path(workload.records));
  const std::vector<std::string> settings = {"batching.max_batch_size=64",
                                             "batching.max_tokens=100000"};
  JobSummary free_run;
  const auto expected = testing::run_job(fixture_path(workload.bundle), lines, workload.task,
                                         settings, dir, &free_run);
  ASSERT_EQ(expected.size(), lines.size());
  EXPECT_EQ(free_run.out_of_memory, 0);

  // The weights stay allocated between runs of this process; the batches add the rest.
  const int64_t resident = CountingCpuAllocator::install().allocated();
  const int64_t batches_need = free_run.memory.peak_allocated - resident;
  ASSERT_GT(batches_need, 0);
  std::vector<std::string> limited = settings;
  const int64_t limit = resident + batches_need / workload.divisor;
  limited.push_back("memory.limit=" + std::to_string(limit));
  JobSummary tight_run;
  const auto outputs = testing::run_job(fixture_path(workload.bundle), lines, workload.task,
                                        limited, dir, &tight_run);
  CountingCpuAllocator::install().set_limit(0);

  EXPECT_GT(tight_run.out_of_memory, 0) << "the limit must make the first batch fail";
  EXPECT_GT(tight_run.forward_passes, free_run.forward_passes);
  EXPECT_LE(tight_run.memory.peak_allocated, limit);
  ASSERT_EQ(outputs.size(), lines.size()) << "one output line per input line";
  for (size_t i = 0; i < outputs.size(); ++i) {
    ASSERT_FALSE(outputs[i].contains("error")) << outputs[i].dump();
    const auto got = scores_of(outputs[i]), want = scores_of(expected[i]);
    ASSERT_EQ(got.size(), want.size()) << "record " << i;
    for (size_t j = 0; j < got.size(); ++j) {
      EXPECT_NEAR(got[j], want[j], 1e-5) << "record " << i << " score " << j;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Workloads, MemoryLimitTest,
    ::testing::Values(Workload{"xlmr_tiny", "pairs.jsonl", "score", 4, "EncoderPairs"},
                      Workload{"qwen3_reranker_tiny", "bce_records.jsonl", "rerank", 2,
                               "DecoderRecordsWithSharedPrefixes"}),
    [](const ::testing::TestParamInfo<Workload>& param) { return std::string(param.param.name); });

TEST(MemoryBudgetTest, ABudgetSplitsBatchesBeforeTheyFail) {
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

TEST(MemoryBudgetTest, WarmUpRunsTheLongestShapeFirstAndChangesNoScore) {
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
