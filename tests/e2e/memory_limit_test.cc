// A memory limit small enough that the first batch fails: the host backend's counting allocator
// refuses it with LibTorch's out-of-memory error, the job splits and retries, and every record
// still gets its output line with the scores of an unlimited run. For an encoder reranker scoring
// pairs, and for an LLM reranker ranking records whose passages share a prefix (run once).
#include <gtest/gtest.h>

#include <iostream>
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

// Every output line is a record's answer, with the scores of `expected`'s line.
void expect_same_scores(const std::vector<nlohmann::json>& outputs,
                        const std::vector<nlohmann::json>& expected) {
  ASSERT_EQ(outputs.size(), expected.size()) << "one output line per input line";
  for (size_t i = 0; i < outputs.size(); ++i) {
    ASSERT_FALSE(outputs[i].contains("error")) << outputs[i].dump();
    const auto got = scores_of(outputs[i]), want = scores_of(expected[i]);
    ASSERT_EQ(got.size(), want.size()) << "record " << i;
    for (size_t j = 0; j < got.size(); ++j) {
      EXPECT_NEAR(got[j], want[j], 1e-5) << "record " << i << " score " << j;
    }
  }
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

  // The weights stay allocated between runs of this process; the batches add the rest. What one
  // sequence needs is not a fixed share of a batch (an LLM reranker's batch of one record's
  // passages runs their prefix once, a lone passage runs whole), so it is measured: a run one
  // sequence at a time. The limit lies halfway between that and the largest batch.
  const int64_t resident = CountingCpuAllocator::install().allocated();
  const int64_t batches_need = free_run.memory.peak_allocated - resident;
  JobSummary one_at_a_time;
  const std::vector<std::string> singles = {"batching.max_batch_size=1",
                                            "batching.max_tokens=100000"};
  expect_same_scores(testing::run_job(fixture_path(workload.bundle), lines, workload.task,
                                      singles, dir, &one_at_a_time),
                     expected);
  const int64_t sequence_needs = one_at_a_time.memory.peak_allocated - resident;
  ASSERT_GT(sequence_needs, 0);
  ASSERT_LT(sequence_needs, batches_need) << "the largest batch must need more than any sequence";
  std::vector<std::string> limited = settings;
  const int64_t limit = resident + (sequence_needs + batches_need) / 2;
  limited.push_back("memory.limit=" + std::to_string(limit));
  JobSummary tight_run;
  const auto outputs = testing::run_job(fixture_path(workload.bundle), lines, workload.task,
                                        limited, dir, &tight_run);
  CountingCpuAllocator::install().set_limit(0);

  EXPECT_GT(tight_run.out_of_memory, 0) << "the limit must make the first batch fail";
  EXPECT_GT(tight_run.forward_passes, free_run.forward_passes);
  EXPECT_LE(tight_run.memory.peak_allocated, limit);
  expect_same_scores(outputs, expected);
}

INSTANTIATE_TEST_SUITE_P(
    Workloads, MemoryLimitTest,
    ::testing::Values(Workload{"xlmr_tiny", "pairs.jsonl", "score", "EncoderPairs"},
                      Workload{"qwen3_reranker_tiny", "bce_records.jsonl", "rerank",
                               "DecoderRecordsWithSharedPrefixes"}),
    [](const ::testing::TestParamInfo<Workload>& param) { return std::string(param.param.name); });

// A passage of 16k tokens next to short ones, on a tiny Qwen3-Reranker with Qwen3's 32k positions
// (tests/reference/make_long_records.py). The graph's attention is causal with no mask tensor, so
// the long sequence adds memory in proportion to its length: far less than one [L, L] mask of
// bytes would take (the graph before this had a [B, 1, L, L] float mask, 2.4 GiB allocated at its
// peak on this record; docs/memory.md). The short passages are batched apart from it, not padded
// to it. And under a limit a quarter of what one [L, L] float mask needs, nothing runs out of
// memory and every record gets the unlimited run's scores.
TEST(LongContextTest, ASixteenThousandTokenPassageBesideShortOnesRunsInBoundedMemory) {
  testing::TempDir dir;
  const auto lines = testing::read_lines(fixture_path("long_context_records.jsonl"));
  const std::vector<std::string> settings = {"task.max_length=32768", "batching.max_batch_size=16",
                                             "batching.max_tokens=40000"};
  const std::string bundle = fixture_path("qwen3_reranker_32k_tiny");
  JobSummary free_run;
  const auto expected = testing::run_job(bundle, lines, "rerank", settings, dir, &free_run);
  ASSERT_EQ(expected.size(), lines.size());
  const int64_t resident = CountingCpuAllocator::install().allocated();
  const int64_t rise = free_run.memory.peak_allocated - resident;
  constexpr int64_t kLong = 16000;  // at least; the first record's first passage
  std::cout << "16k-token record: the batches added " << rise / (1 << 20) << " MiB at their peak; "
            << free_run.padded_tokens << " padded tokens for " << free_run.real_tokens
            << " real ones\n";
  EXPECT_GT(free_run.real_tokens, kLong);
  EXPECT_LT(rise, kLong * kLong) << "something length-squared was built";
  EXPECT_LT(static_cast<double>(free_run.padded_tokens), 1.1 * free_run.real_tokens)
      << "short passages were padded to the long one";

  const int64_t limit = resident + kLong * kLong;  // a quarter of one [L, L] float mask
  std::vector<std::string> limited = settings;
  limited.push_back("memory.limit=" + std::to_string(limit));
  JobSummary tight_run;
  const auto outputs = testing::run_job(bundle, lines, "rerank", limited, dir, &tight_run);
  CountingCpuAllocator::install().set_limit(0);
  EXPECT_EQ(tight_run.out_of_memory, 0);
  ASSERT_EQ(outputs.size(), lines.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    ASSERT_FALSE(outputs[i].contains("error")) << outputs[i].dump().substr(0, 300);
    const auto got = scores_of(outputs[i]), want = scores_of(expected[i]);
    ASSERT_EQ(got.size(), want.size()) << "record " << i;
    for (size_t j = 0; j < got.size(); ++j) {
      EXPECT_NEAR(got[j], want[j], 1e-5) << "record " << i << " score " << j;
    }
  }
}

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

// A decoder's memory is known before its first batch (the LLM reranker's estimate from its
// architecture, llm_reranker_adapter.cc): under a budget the very first batch is split, where an
// encoder's waits for a measured batch (the test above).
TEST(MemoryBudgetTest, ADecodersEstimateSplitsItsFirstBatch) {
  testing::TempDir dir;
  // One pair sixteen times: batches of one length.
  const std::vector<std::string> pairs(16, testing::read_lines(fixture_path("pairs.jsonl"))[3]);
  const std::vector<std::string> settings = {"batching.max_batch_size=64",
                                             "batching.max_tokens=100000", "batching.window=1000"};
  JobSummary free_run;
  const auto expected = testing::run_job(fixture_path("qwen3_reranker_tiny"), pairs, "score",
                                         settings, dir, &free_run);
  ASSERT_EQ(free_run.budget_splits, 0);
  std::vector<std::string> budgeted_settings = settings;
  budgeted_settings.push_back("memory.budget=" + std::to_string(1 << 20));
  JobSummary budgeted;
  const auto outputs = testing::run_job(fixture_path("qwen3_reranker_tiny"), pairs, "score",
                                        budgeted_settings, dir, &budgeted);
  // Every batch is split, the first one too: before it ran, only the estimate knew its size.
  EXPECT_EQ(budgeted.budget_splits, free_run.batches);
  EXPECT_GT(budgeted.forward_passes, free_run.forward_passes);
  ASSERT_EQ(outputs.size(), expected.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    EXPECT_NEAR(outputs[i].at("score").get<double>(), expected[i].at("score").get<double>(), 1e-5)
        << "pair " << i;
  }
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
