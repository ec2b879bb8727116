// WordPiece against transformers' BertTokenizer, and StructBERT-style models against the
// transformers reference run as ModelScope runs them: the cross-encoder's softmax probability of
// the "similar" label and the bi-encoder's cosine of mean-pooled vectors.
#include <gtest/gtest.h>

#include "engine/text/wordpiece_tokenizer.h"
#include "models/cross_encoder/pair_encoder.h"
#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::fixture_path;

constexpr double kTolerance = 1e-5;

std::unique_ptr<WordPieceTokenizer> tokenizer_for(bool lowercase) {
  return std::make_unique<WordPieceTokenizer>(fixture_path("sbert_tiny/vocab.txt"),
                                              WordPieceOptions{lowercase, -1, true});
}

TEST(WordPieceParityTest, SinglesEqualBertTokenizer) {
  const auto reference = testing::read_json(fixture_path("wordpiece_reference.json"));
  const auto lowercase = tokenizer_for(true);
  const auto cased = tokenizer_for(false);
  size_t compared = 0;
  for (const auto& item : reference.at("singles")) {
    const Tokenizer& tokenizer = item.at("lowercase").get<bool>() ? *lowercase : *cased;
    const std::string text = item.at("text");
    const auto ids = tokenizer.build_single(tokenizer.encode(text)).ids;
    EXPECT_EQ(ids, item.at("slow_ids").get<std::vector<int64_t>>())
        << "lowercase " << item.at("lowercase") << " text: " << text;
    ++compared;
  }
  EXPECT_GE(compared, 100u);
}

TEST(WordPieceParityTest, PairsEqualBertTokenizerLongestFirst) {
  const auto reference = testing::read_json(fixture_path("wordpiece_reference.json"));
  const auto lowercase = tokenizer_for(true);
  const auto cased = tokenizer_for(false);
  const models::cross_encoder::CrossEncoderOptions options;  // the defaults
  for (const auto& item : reference.at("pairs")) {
    TaskConfig task;
    task.max_length = item.at("max_length");
    const Tokenizer& tokenizer = item.at("lowercase").get<bool>() ? *lowercase : *cased;
    models::cross_encoder::PairEncoder pairs(tokenizer, task.max_length, options, "longest_first");
    const auto sequences =
        pairs.encode(item.at("text_a").get<std::string>(), item.at("text_b").get<std::string>());
    ASSERT_EQ(sequences.size(), 1u);
    EXPECT_EQ(sequences[0].ids, item.at("slow_ids").get<std::vector<int64_t>>())
        << "max_length " << task.max_length << " a: " << item.at("text_a").get<std::string>()
        << " b: " << item.at("text_b").get<std::string>();
    EXPECT_EQ(sequences[0].type_ids, item.at("slow_type_ids").get<std::vector<int64_t>>());
  }
}

class StructBertParityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    reference_ = new nlohmann::json(testing::read_json(fixture_path("structbert_128.json")));
  }
  static void TearDownTestSuite() { delete reference_; }

  static std::vector<std::string> score_records() {
    std::vector<std::string> lines;
    for (const auto& pair : reference_->at("pairs")) {
      lines.push_back(
          nlohmann::json({{"text_a", pair.at("text_a")}, {"text_b", pair.at("text_b")}}).dump());
    }
    return lines;
  }

  static nlohmann::json* reference_;
  testing::TempDir dir_;
};

nlohmann::json* StructBertParityTest::reference_ = nullptr;

TEST_F(StructBertParityTest, CrossEncoderGivesModelScopesSimilarProbability) {
  const int similar = reference_->at("similar_index");
  const auto outputs = testing::run_job(fixture_path("sbert_tiny"), score_records(), "score",
                                        {"task.max_length=128", "model.options.activation=softmax",
                                         "model.options.label=" + std::to_string(similar)},
                                        dir_);
  const auto& probabilities = reference_->at("probabilities");
  ASSERT_EQ(outputs.size(), probabilities.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    EXPECT_NEAR(outputs[i].at("score").get<double>(), probabilities[i][similar].get<double>(),
                kTolerance)
        << "pair " << i;
  }
  const auto raw = testing::run_job(fixture_path("sbert_tiny"), score_records(), "score",
                                    {"task.max_length=128", "model.options.label=0"}, dir_);
  for (size_t i = 0; i < raw.size(); ++i) {
    EXPECT_NEAR(raw[i].at("score").get<double>(), reference_->at("logits")[i][0].get<double>(),
                kTolerance)
        << "raw logit of pair " << i;
  }
}

TEST_F(StructBertParityTest, BiEncoderGivesTheCosineOfMeanPooledVectors) {
  const auto outputs = testing::run_job(fixture_path("sbert_tiny_bi"), score_records(), "score",
                                        {"task.max_length=128"}, dir_);
  const auto& cosine = reference_->at("cosine");
  ASSERT_EQ(outputs.size(), cosine.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    EXPECT_NEAR(outputs[i].at("score").get<double>(), cosine[i].get<double>(), kTolerance)
        << "pair " << i;
  }
  std::vector<std::string> texts;
  for (const auto& pair : reference_->at("pairs")) {
    texts.push_back(nlohmann::json({{"text", pair.at("text_a")}}).dump());
  }
  const auto embedded = testing::run_job(fixture_path("sbert_tiny_bi"), texts, "embed",
                                         {"task.max_length=128"}, dir_);
  const auto& expected = reference_->at("embeddings_a");
  for (size_t i = 0; i < embedded.size(); ++i) {
    const auto& vector = embedded[i].at("dense");
    ASSERT_EQ(vector.size(), expected[i].size());
    for (size_t k = 0; k < vector.size(); ++k) {
      ASSERT_NEAR(vector[k].get<double>(), expected[i][k].get<double>(), kTolerance)
          << "embedding " << i << "[" << k << "]";
    }
  }
}

}  // namespace
}  // namespace engine
