// Scores of the whole batch job against FlagEmbedding's FlagReranker on the same tiny checkpoint
// and pairs, and their independence from input order and batch size.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "engine/jobs/batch_job.h"
#include "engine/memory/device_memory.h"
#include "models/registry.h"
#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::fixture_path;
using testing::read_lines;
using testing::TempDir;

constexpr double kParityTolerance = 1e-5;

class RerankerParityTest : public ::testing::Test {
 protected:
  std::vector<nlohmann::json> run_job(const std::vector<std::string>& input_lines,
                                      const std::string& task,
                                      const std::vector<std::string>& overrides) {
    auto outputs = testing::run_job(fixture_path("xlmr_tiny"), input_lines, task, overrides, dir_,
                                    &last_summary_);
    EXPECT_EQ(last_summary_.records, static_cast<int64_t>(input_lines.size()));
    return outputs;
  }

  // Scores of the fixture pairs against FlagReranker's in `reference_file`, raw and normalized.
  void expect_flag_parity(const std::string& reference_file, int max_length,
                          const std::vector<std::string>& extra_overrides = {}) {
    const auto reference = testing::read_json(fixture_path(reference_file));
    const auto pairs = read_lines(fixture_path("pairs.jsonl"));
    for (bool normalize : {false, true}) {
      std::vector<std::string> overrides = extra_overrides;
      overrides.push_back("task.max_length=" + std::to_string(max_length));
      overrides.push_back(std::string("task.normalize=") + (normalize ? "true" : "false"));
      const auto outputs = run_job(pairs, "score", overrides);
      const auto& expected = reference.at(normalize ? "normalized" : "raw");
      ASSERT_EQ(outputs.size(), expected.size());
      double worst = 0;
      for (size_t i = 0; i < outputs.size(); ++i) {
        ASSERT_TRUE(outputs[i].contains("score")) << outputs[i].dump();
        const double difference =
            std::abs(outputs[i].at("score").get<double>() - expected[i].get<double>());
        worst = std::max(worst, difference);
        EXPECT_LE(difference, kParityTolerance) << "pair " << i << ": " << pairs[i];
      }
      std::cout << reference_file << (normalize ? " normalized" : " raw")
                << ": max |engine - FlagReranker| = " << worst << "\n";
    }
  }

  TempDir dir_;
  JobSummary last_summary_;
};

TEST_F(RerankerParityTest, ScoresEqualFlagRerankerAtMaxLength512) {
  expect_flag_parity("flag_reranker_512.json", 512);
}

TEST_F(RerankerParityTest, ScoresEqualFlagRerankerAtMaxLength64) {
  expect_flag_parity("flag_reranker_64.json", 64);
}

TEST_F(RerankerParityTest, InstructionsAreAppliedAsFlagRerankerDoes) {
  expect_flag_parity("flag_reranker_instructions.json", 128,
                     {"model.options.query_instruction='Find the passage that answers: '",
                      "model.options.passage_instruction=passage",
                      "model.options.passage_instruction_format='[{}]\\n{}'"});
}

TEST_F(RerankerParityTest, ChunkedLongPassagesEqualBCEmbedding) {
  const auto reference = testing::read_json(fixture_path("bce_reranker_256.json"));
  const auto records = read_lines(fixture_path("bce_records.jsonl"));
  const auto outputs = run_job(records, "rerank",
                               {"task.max_length=256", "model.options.long_passages=chunk_max",
                                "task.normalize=true", "batching.max_batch_size=5"});
  EXPECT_GT(last_summary_.sequences, last_summary_.pairs + 20)
      << "the fixture must hold passages of several chunks";
  ASSERT_EQ(outputs.size(), records.size());
  double worst = 0;
  for (const auto& output : outputs) {
    const auto& expected = reference.at(output.at("id").get<std::string>());
    ASSERT_EQ(output.at("results").size(), expected.size());
    for (const auto& result : output.at("results")) {
      const double difference =
          std::abs(result.at("score").get<double>() -
                   expected.at(result.at("index").get<size_t>()).get<double>());
      worst = std::max(worst, difference);
      EXPECT_LE(difference, kParityTolerance)
          << output.at("id") << " passage " << result.at("index");
    }
  }
  std::cout << "chunk_max: max |engine - BCEmbedding| = " << worst << "\n";
}

// Rerank records made from the fixture pairs: a few passages per query, with ids.
std::vector<std::string> rerank_records() {
  const auto pairs = read_lines(fixture_path("pairs.jsonl"));
  std::vector<std::string> records;
  for (size_t start = 0; start < pairs.size(); start += 4) {
    nlohmann::json record = {{"id", "r" + std::to_string(start)}};
    record["query"] = nlohmann::json::parse(pairs[start]).at("query");
    nlohmann::json passages = nlohmann::json::array();
    for (size_t i = start; i < std::min(start + 4, pairs.size()); ++i) {
      passages.push_back({{"id", i}, {"text", nlohmann::json::parse(pairs[i]).at("passage")}});
    }
    record["passages"] = passages;
    records.push_back(record.dump());
  }
  return records;
}

// record id -> passage id -> score
std::map<std::string, std::map<int, double>> scores_by_id(
    const std::vector<nlohmann::json>& outputs) {
  std::map<std::string, std::map<int, double>> scores;
  for (const auto& output : outputs) {
    for (const auto& result : output.at("results")) {
      scores[output.at("id")][result.at("id")] = result.at("score");
    }
  }
  return scores;
}

TEST_F(RerankerParityTest, ShufflingAndBatchSizeLeaveScoresUnchanged) {
  const auto records = rerank_records();
  const auto baseline = run_job(records, "rerank", {"batching.max_batch_size=32"});
  const auto expected = scores_by_id(baseline);
  ASSERT_EQ(expected.size(), records.size());

  std::vector<std::string> shuffled = records;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(3));
  struct Variant {
    std::vector<std::string> input;
    std::vector<std::string> overrides;
  };
  const std::vector<Variant> variants = {
      {records, {"batching.max_batch_size=1"}},
      {records, {"batching.max_batch_size=3", "batching.pad_multiple=1"}},
      {shuffled, {"batching.max_batch_size=7"}},
      {shuffled, {"batching.max_tokens=600", "batching.window=5"}},
  };
  for (const auto& variant : variants) {
    const auto outputs = run_job(variant.input, "rerank", variant.overrides);
    // Output order follows input order.
    for (size_t i = 0; i < outputs.size(); ++i) {
      EXPECT_EQ(outputs[i].at("id"), nlohmann::json::parse(variant.input[i]).at("id"));
    }
    const auto actual = scores_by_id(outputs);
    for (const auto& [record, passages] : expected) {
      for (const auto& [passage, score] : passages) {
        EXPECT_NEAR(actual.at(record).at(passage), score, 1e-6)
            << record << "/" << passage << " with " << variant.overrides.front();
      }
    }
  }
}

TEST_F(RerankerParityTest, RerankResultsAreSortedAndCutToTopK) {
  const auto outputs = run_job(rerank_records(), "rerank", {"task.top_k=2"});
  for (const auto& output : outputs) {
    const auto& results = output.at("results");
    ASSERT_LE(results.size(), 2u);
    for (size_t i = 1; i < results.size(); ++i) {
      EXPECT_GE(results[i - 1].at("score").get<double>(), results[i].at("score").get<double>());
    }
  }
}

}  // namespace
}  // namespace engine
