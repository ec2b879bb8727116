// CrossEncoder directories as sentence-transformers publishes them (BERT like the ms-marco MiniLM
// cross-encoders, ModernBERT like gte-reranker-modernbert-base; tokenizer.json), exported with
// no --family: the batch job's scores against CrossEncoder.predict on the same tiny random
// checkpoints (tests/reference/cross_encoder_reference.py), with the directory's own activation
// by default and as raw logits.
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>

#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::fixture_path;

constexpr double kTolerance = 1e-5;

using Case = testing::ParityCase;


class PublishedCrossEncoderParityTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override { reference_ = testing::read_json(fixture_path(GetParam().reference)); }

  // Each pair's score under `overrides`, and the worst distance from reference[key].
  double worst_distance(const std::vector<std::string>& overrides, const char* key) {
    std::vector<std::string> lines;
    for (const auto& pair : reference_.at("pairs")) {
      lines.push_back(nlohmann::json({{"query", pair[0]}, {"passage", pair[1]}}).dump());
    }
    std::vector<std::string> all = overrides;
    all.push_back("task.max_length=" + std::to_string(reference_.at("max_length").get<int>()));
    const auto outputs =
        testing::run_job(fixture_path(GetParam().bundle), lines, "score", all, dir_);
    const auto& expected = reference_.at(key);
    EXPECT_EQ(outputs.size(), expected.size());
    double worst = 0;
    for (size_t i = 0; i < std::min(outputs.size(), expected.size()); ++i) {
      worst = std::max(worst,
                       std::abs(outputs[i].at("score").get<double>() - expected[i].get<double>()));
    }
    return worst;
  }

  nlohmann::json reference_;
  testing::TempDir dir_;
};

TEST_P(PublishedCrossEncoderParityTest, ScoresAreCrossEncoderPredictWithItsActivation) {
  EXPECT_LE(worst_distance({}, "scores"), kTolerance);
  for (const auto& score : reference_.at("scores")) {
    ASSERT_GT(score.get<double>(), 0.0);  // through the sigmoid the directory names
    ASSERT_LT(score.get<double>(), 1.0);
  }
}

TEST_P(PublishedCrossEncoderParityTest, ActivationNoneGivesItsRawLogits) {
  EXPECT_LE(worst_distance({"model.options.activation=none"}, "logits"), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(Layouts, PublishedCrossEncoderParityTest,
                         ::testing::Values(Case{"ce_bert_tiny", "cross_encoder_bert.json", "Bert"},
                                           Case{"ce_modernbert_tiny",
                                                "cross_encoder_modernbert.json", "ModernBert"}),
                         testing::ParityCaseName());

}  // namespace
}  // namespace engine
