// BGE-M3 against FlagEmbedding's BGEM3FlagModel on the same tiny checkpoint: the embed task's
// dense, lexical and ColBERT outputs, and the score task in every mode.
#include <cmath>

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::fixture_path;

constexpr double kTolerance = 1e-5;

class BgeM3ParityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    reference_ = new nlohmann::json(testing::read_json(fixture_path("bge_m3_reference.json")));
  }
  static void TearDownTestSuite() { delete reference_; }

  std::vector<nlohmann::json> embed(const nlohmann::json& texts, int max_length) {
    std::vector<std::string> lines;
    for (size_t i = 0; i < texts.size(); ++i) {
      lines.push_back(nlohmann::json({{"id", i}, {"text", texts[i]}}).dump());
    }
    return testing::run_job(fixture_path("m3_tiny"), lines, "embed",
                            {"model.options.outputs=dense,sparse,colbert",
                             "task.max_length=" + std::to_string(max_length)},
                            dir_);
  }

  void expect_embeddings(const nlohmann::json& expected, int max_length) {
    const auto outputs = embed(reference_->at("texts"), max_length);
    ASSERT_EQ(outputs.size(), expected.at("dense").size());
    for (size_t i = 0; i < outputs.size(); ++i) {
      const auto& output = outputs[i];
      EXPECT_EQ(output.at("id"), i);
      expect_close(output.at("dense"), expected.at("dense")[i], "dense", i);
      const auto& sparse = output.at("sparse");
      const auto& sparse_expected = expected.at("lexical_weights")[i];
      EXPECT_EQ(sparse.size(), sparse_expected.size()) << "lexical weights of text " << i;
      for (const auto& [token, weight] : sparse_expected.items()) {
        ASSERT_TRUE(sparse.contains(token)) << "token " << token << " of text " << i;
        EXPECT_NEAR(sparse.at(token).get<double>(), weight.get<double>(), kTolerance);
      }
      const auto& colbert = output.at("colbert");
      const auto& colbert_expected = expected.at("colbert")[i];
      ASSERT_EQ(colbert.size(), colbert_expected.size()) << "ColBERT rows of text " << i;
      for (size_t row = 0; row < colbert.size(); ++row) {
        expect_close(colbert[row], colbert_expected[row], "colbert", i);
      }
    }
  }

  static void expect_close(const nlohmann::json& actual, const nlohmann::json& expected,
                           const char* what, size_t text) {
    ASSERT_EQ(actual.size(), expected.size()) << what << " of text " << text;
    for (size_t k = 0; k < actual.size(); ++k) {
      ASSERT_NEAR(actual[k].get<double>(), expected[k].get<double>(), kTolerance)
          << what << "[" << k << "] of text " << text;
    }
  }

  static nlohmann::json* reference_;
  testing::TempDir dir_;
};

nlohmann::json* BgeM3ParityTest::reference_ = nullptr;

TEST_F(BgeM3ParityTest, EmbeddingsEqualFlagEmbeddingAt512) { expect_embeddings(*reference_, 512); }

TEST_F(BgeM3ParityTest, EmbeddingsEqualFlagEmbeddingAt128) {
  expect_embeddings(reference_->at("max_length_128"), 128);
}

// The same checkpoint traced in bf16 (tools/export.py --dtype bf16): every output within bf16's
// rounding of FlagEmbedding's fp32 ones, and the sparse weights of the same tokens.
TEST_F(BgeM3ParityTest, ABf16GraphStaysCloseToFlagEmbedding) {
  const nlohmann::json& texts = reference_->at("texts");
  std::vector<std::string> lines;
  for (size_t i = 0; i < texts.size(); ++i) {
    lines.push_back(nlohmann::json({{"id", i}, {"text", texts[i]}}).dump());
  }
  const auto outputs =
      testing::run_job(fixture_path("m3_tiny_bf16"), lines, "embed",
                       {"model.options.outputs=dense,sparse,colbert", "task.max_length=512"}, dir_);
  const nlohmann::json& expected = *reference_;
  ASSERT_EQ(outputs.size(), expected.at("dense").size());
  double dense_worst = 0, sparse_worst = 0, largest_weight = 1;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto& dense = outputs[i].at("dense");
    ASSERT_EQ(dense.size(), expected.at("dense")[i].size());
    for (size_t k = 0; k < dense.size(); ++k) {
      dense_worst = std::max(
          dense_worst, std::abs(dense[k].get<double>() - expected.at("dense")[i][k].get<double>()));
    }
    const auto& reference = expected.at("lexical_weights")[i];
    for (const auto& [token, weight] : outputs[i].at("sparse").items()) {
      if (!reference.contains(token)) continue;
      const double want = reference.at(token).get<double>();
      sparse_worst = std::max(sparse_worst, std::abs(weight.get<double>() - want));
      largest_weight = std::max(largest_weight, want);
    }
    EXPECT_EQ(outputs[i].at("colbert").size(), expected.at("colbert")[i].size());
  }
  std::cout << "bf16 graph: max |dense - FlagEmbedding fp32| = " << dense_worst
            << ", max |sparse weight - FlagEmbedding fp32| = " << sparse_worst << " (largest "
            << largest_weight << ")\n";
  // Unit vectors of 32 dims: bf16 keeps 2-3 digits of each component; the lexical weights are
  // relu outputs of any size, so relative to the largest.
  EXPECT_LE(dense_worst, 0.05);
  EXPECT_LE(sparse_worst, 0.05 * largest_weight);
  const double worst = std::max(dense_worst, sparse_worst);
  EXPECT_GT(worst, 0.0) << "the bf16 graph must actually run in bf16";
}

TEST_F(BgeM3ParityTest, ScoresEqualComputeScoreInEveryMode) {
  std::vector<std::string> lines;
  for (const auto& pair : reference_->at("pairs")) {
    lines.push_back(nlohmann::json({{"text_a", pair[0]}, {"text_b", pair[1]}}).dump());
  }
  const auto& scores = reference_->at("compute_score");
  const std::vector<std::pair<std::string, std::string>> modes = {
      {"dense", "dense"},
      {"sparse", "sparse"},
      {"colbert", "colbert"},
      {"combined", "colbert+sparse+dense"}};
  for (const auto& [mode, key] : modes) {
    const auto outputs =
        testing::run_job(fixture_path("m3_tiny"), lines, "score",
                         {"model.options.mode=" + mode, "model.options.weights=0.4,0.2,0.4"}, dir_);
    ASSERT_EQ(outputs.size(), scores.at(key).size());
    for (size_t i = 0; i < outputs.size(); ++i) {
      EXPECT_NEAR(outputs[i].at("score").get<double>(), scores.at(key)[i].get<double>(), kTolerance)
          << mode << " score of pair " << i;
    }
  }
}

TEST_F(BgeM3ParityTest, RerankSharesTheQueryAndSortsPassages) {
  const auto& pairs = reference_->at("pairs");
  nlohmann::json record = {{"id", "q"}, {"query", pairs[0][0]}};
  record["passages"] = nlohmann::json::array();
  for (const auto& pair : pairs) record["passages"].push_back(pair[1]);
  JobSummary summary;
  const auto outputs = testing::run_job(fixture_path("m3_tiny"), {record.dump()}, "rerank",
                                        {"model.options.mode=dense"}, dir_, &summary);
  EXPECT_EQ(summary.sequences, static_cast<int64_t>(pairs.size()) + 1)
      << "the query is encoded once for all its passages";
  const auto& results = outputs.at(0).at("results");
  ASSERT_EQ(results.size(), pairs.size());
  for (size_t i = 1; i < results.size(); ++i) {
    EXPECT_GE(results[i - 1].at("score").get<double>(), results[i].at("score").get<double>());
  }
  // The first pair's passage scores as compute_score's first dense score.
  for (const auto& result : results) {
    if (result.at("index") == 0) {
      EXPECT_NEAR(result.at("score").get<double>(),
                  reference_->at("compute_score").at("dense")[0].get<double>(), kTolerance);
    }
  }
}

TEST_F(BgeM3ParityTest, SparseOutputCanNameTokens) {
  const auto outputs =
      testing::run_job(fixture_path("m3_tiny"), {R"({"id": 1, "text": "panda bamboo"})"}, "embed",
                       {"model.options.outputs=sparse", "model.options.sparse_tokens=true"}, dir_);
  const auto& output = outputs.at(0);
  EXPECT_FALSE(output.contains("dense"));
  EXPECT_FALSE(output.contains("colbert"));
  ASSERT_FALSE(output.at("sparse").empty());
  for (const auto& [token, weight] : output.at("sparse").items()) {
    EXPECT_FALSE(token.empty());
    EXPECT_GT(weight.get<double>(), 0.0);
    EXPECT_EQ(token.find_first_not_of("0123456789"), token.empty() ? std::string::npos : 0u)
        << "a piece, not an id: " << token;
  }
}

}  // namespace
}  // namespace engine
