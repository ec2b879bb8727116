// The LLM reranker against FlagEmbedding's FlagLLMReranker on the same tiny Gemma checkpoint:
// Gemma tokenization, the exact input ids of each pair, the 'Yes' scores, and scores that do not
// depend on batching or on which side a batch is padded.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include "engine/runtime/pair_scoring_adapter.h"
#include "models/registry.h"
#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::fixture_path;

constexpr double kTolerance = 1e-5;

class LlmRerankerParityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    models::register_model_families();
    reference_ = new nlohmann::json(testing::read_json(fixture_path("llm_reranker_256.json")));
  }
  static void TearDownTestSuite() { delete reference_; }

  static std::vector<std::string> score_records() {
    std::vector<std::string> lines;
    for (const auto& pair : reference_->at("pairs")) {
      lines.push_back(
          nlohmann::json({{"query", pair.at("query")}, {"passage", pair.at("passage")}}).dump());
    }
    return lines;
  }

  static nlohmann::json* reference_;
  testing::TempDir dir_;
};

nlohmann::json* LlmRerankerParityTest::reference_ = nullptr;

TEST_F(LlmRerankerParityTest, GemmaTokenizationEqualsTransformers) {
  ModelBundle bundle = load_bundle_without_model(fixture_path("llm_tiny"));
  const Tokenizer& tokenizer = *bundle.tokenizer;
  for (const auto& item : reference_->at("texts")) {
    const std::string text = item.at("text");
    EXPECT_EQ(tokenizer.encode(text), item.at("slow_ids").get<std::vector<int64_t>>()) << text;
    EXPECT_EQ(tokenizer.build_single(tokenizer.encode(text)).ids,
              item.at("slow_ids_bos").get<std::vector<int64_t>>())
        << text;
  }
}

TEST_F(LlmRerankerParityTest, PairsAreBuiltAsFlagLlmRerankerBuildsThem) {
  ModelBundle bundle = load_bundle_without_model(fixture_path("llm_tiny"));
  TaskConfig task;
  task.kind = TaskKind::kScore;
  task.max_length = reference_->at("max_length");
  const auto options = read_family_options(
      "llm_reranker", {ConfigNode::empty("model.options"), bundle.manifest, task});
  auto adapter = make_adapter("llm_reranker", {bundle, task, *options});
  auto& scorer = dynamic_cast<PairScoringAdapter&>(*adapter);
  size_t truncated = 0;
  for (const auto& pair : reference_->at("pairs")) {
    const auto sequences = scorer.encode_pair(pair.at("query").get<std::string>(),
                                              pair.at("passage").get<std::string>(), std::nullopt);
    ASSERT_EQ(sequences.size(), 1u);
    EXPECT_EQ(sequences[0].ids, pair.at("input_ids").get<std::vector<int64_t>>())
        << "query: " << pair.at("query").get<std::string>();
    truncated += pair.at("query_truncated").get<bool>() || pair.at("passage_truncated").get<bool>();
  }
  EXPECT_GE(truncated, 2u) << "the fixture must cut both queries and passages";
}

TEST_F(LlmRerankerParityTest, ScoresEqualFlagLlmReranker) {
  const auto& expected = reference_->at("scores").at("batch_size_1");
  const std::string max_length =
      "task.max_length=" + std::to_string(reference_->at("max_length").get<int>());
  for (const char* batch : {"batching.max_batch_size=1", "batching.max_batch_size=8"}) {
    const auto outputs = testing::run_job(fixture_path("llm_tiny"), score_records(), "score",
                                          {max_length, batch}, dir_);
    ASSERT_EQ(outputs.size(), expected.size());
    for (size_t i = 0; i < outputs.size(); ++i) {
      EXPECT_NEAR(outputs[i].at("score").get<double>(), expected[i].get<double>(), kTolerance)
          << batch << " pair " << i;
    }
  }
}

// The same checkpoint traced in bf16: scores within bf16's rounding of FlagLLMReranker's fp32
// ones (relative to the logits' size), and not equal to them.
TEST_F(LlmRerankerParityTest, ABf16GraphStaysCloseToFlagLlmReranker) {
  const auto& expected = reference_->at("scores").at("batch_size_1");
  const std::string max_length =
      "task.max_length=" + std::to_string(reference_->at("max_length").get<int>());
  const auto outputs =
      testing::run_job(fixture_path("llm_tiny_bf16"), score_records(), "score", {max_length}, dir_);
  ASSERT_EQ(outputs.size(), expected.size());
  double worst = 0, largest = 1;
  for (size_t i = 0; i < outputs.size(); ++i) {
    worst =
        std::max(worst, std::abs(outputs[i].at("score").get<double>() - expected[i].get<double>()));
    largest = std::max(largest, std::abs(expected[i].get<double>()));
  }
  std::cout << "bf16 graph: max |score - FlagLLMReranker fp32| = " << worst << "\n";
  EXPECT_LE(worst, 0.05 * largest);
  EXPECT_GT(worst, 0.0);
}

// The graph reads rows padded on the right, as the engine pads them (engine.json "padding"): its
// attention is causal with no mask tensor, so a padded row scores as it does alone.
TEST_F(LlmRerankerParityTest, RightPaddedRowsScoreAsTheyDoAlone) {
  ModelConfig config;
  config.path = fixture_path("llm_tiny");
  config.device = "cpu";
  ModelBundle bundle = load_bundle(config);
  EXPECT_EQ(bundle.manifest.document.value("padding", std::string()), "right");
  c10::InferenceMode inference;
  const std::vector<std::vector<int64_t>> rows = {{2, 40, 41, 42, 43, 44, 45, 46}, {2, 50, 51}};
  const int64_t length = 8;
  at::Tensor right = at::zeros({2, length}, at::kLong);
  at::Tensor right_mask = at::zeros_like(right);
  for (int64_t r = 0; r < 2; ++r) {
    const auto& row = rows[static_cast<size_t>(r)];
    for (int64_t c = 0; c < static_cast<int64_t>(row.size()); ++c) {
      right[r][c] = row[static_cast<size_t>(c)];
      right_mask[r][c] = 1;
    }
  }
  const at::Tensor right_scores = bundle.model->forward({right, right_mask})[0];
  for (int64_t r = 0; r < 2; ++r) {
    const auto n = static_cast<int64_t>(rows[static_cast<size_t>(r)].size());
    const at::Tensor alone = bundle.model->forward(
        {right.slice(0, r, r + 1).slice(1, 0, n), right_mask.slice(0, r, r + 1).slice(1, 0, n)})[0];
    EXPECT_NEAR(right_scores[r].item<double>(), alone[0].item<double>(), kTolerance) << "row " << r;
  }
  EXPECT_GT((right_scores[0] - right_scores[1]).abs().item<double>(), 1e-4)
      << "different inputs score differently";
}

}  // namespace
}  // namespace engine
