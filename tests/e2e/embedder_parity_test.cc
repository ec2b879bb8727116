// Published embedder directories (sentence-transformers layout), exported by models/embedder/
// with no --family: the batch job's vectors and scores against SentenceTransformer.encode and
// model.similarity on the same tiny random checkpoints (tests/reference/embedder_reference.py),
// with each of the directory's prompts: BERT through tokenizer.json and through vocab.txt alone,
// ModernBERT (local and global attention layers) and Qwen3 (last-token pooling of a decoder,
// which sentence-transformers pads on the left and the engine on the right).
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>

#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::fixture_path;

constexpr double kTolerance = 1e-5;

using Case = testing::ParityCase;


class EmbedderParityTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    reference_ = testing::read_json(fixture_path(GetParam().reference));
    bundle_ = fixture_path(GetParam().bundle);
  }

  std::vector<nlohmann::json> embed(const std::string& prompt) {
    std::vector<std::string> lines;
    for (const auto& text : reference_.at("texts")) {
      lines.push_back(nlohmann::json({{"text", text}}).dump());
    }
    const std::string max_length = std::to_string(reference_.at("max_length").get<int>());
    return testing::run_job(bundle_, lines, "embed",
                            {"task.max_length=" + max_length, "model.options.prompt=" + prompt},
                            dir_);
  }

  nlohmann::json reference_;
  std::string bundle_;
  testing::TempDir dir_;
};

TEST_P(EmbedderParityTest, VectorsAreWhatSentenceTransformersEncodesUnderEachPrompt) {
  const auto& embeddings = reference_.at("embeddings");
  ASSERT_EQ(embeddings.size(), reference_.at("prompts").size() + 1) << "no prompt, and each";
  ASSERT_GE(embeddings.size(), 2u);
  for (const auto& [prompt, expected] : embeddings.items()) {
    const auto outputs = embed(prompt);
    ASSERT_EQ(outputs.size(), expected.size());
    double worst = 0;
    for (size_t i = 0; i < outputs.size(); ++i) {
      const auto& vector = outputs[i].at("dense");
      ASSERT_EQ(vector.size(), expected[i].size()) << "text " << i;
      double norm = 0;
      for (size_t k = 0; k < vector.size(); ++k) {
        worst = std::max(worst, std::abs(vector[k].get<double>() - expected[i][k].get<double>()));
        norm += vector[k].get<double>() * vector[k].get<double>();
      }
      EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-5) << "modules.json normalises; text " << i;
    }
    EXPECT_LE(worst, kTolerance) << "prompt " << prompt;
  }
}

TEST_P(EmbedderParityTest, EachRecordMayNameItsOwnPrompt) {
  // Records alternate between the prompts (and none); one names a prompt the model lacks and
  // becomes an error record naming the model's prompts, the others are unaffected.
  std::vector<std::string> names = {"none"};
  for (const auto& [name, text] : reference_.at("prompts").items()) names.push_back(name);
  const auto& texts = reference_.at("texts");
  std::vector<std::string> lines;
  for (size_t i = 0; i < texts.size(); ++i) {
    lines.push_back(
        nlohmann::json({{"text", texts[i]}, {"prompt_name", names[i % names.size()]}}).dump());
  }
  lines.push_back(R"({"text": "x", "prompt_name": "instruction"})");
  const std::string max_length = std::to_string(reference_.at("max_length").get<int>());
  const auto outputs =
      testing::run_job(bundle_, lines, "embed", {"task.max_length=" + max_length}, dir_);
  ASSERT_EQ(outputs.size(), lines.size());
  double worst = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto& expected = reference_.at("embeddings").at(names[i % names.size()])[i];
    const auto& vector = outputs[i].at("dense");
    ASSERT_EQ(vector.size(), expected.size()) << "text " << i;
    for (size_t k = 0; k < vector.size(); ++k) {
      worst = std::max(worst, std::abs(vector[k].get<double>() - expected[k].get<double>()));
    }
  }
  EXPECT_LE(worst, kTolerance);
  const std::string error = outputs.back().at("error");
  EXPECT_NE(error.find("\"prompt_name\" is 'instruction', not a prompt of this model"),
            std::string::npos)
      << error;
}

TEST_P(EmbedderParityTest, RerankScoresAreSentenceTransformersSimilarityWithItsPrompts) {
  std::vector<std::string> lines;
  for (const auto& record : reference_.at("rerank")) {
    lines.push_back(
        nlohmann::json({{"query", record.at("query")}, {"passages", record.at("passages")}})
            .dump());
  }
  const auto outputs = testing::run_job(bundle_, lines, "rerank", {}, dir_);
  ASSERT_EQ(outputs.size(), reference_.at("rerank").size());
  for (size_t r = 0; r < outputs.size(); ++r) {
    const auto& scores = reference_.at("rerank")[r].at("scores");
    const auto& results = outputs[r].at("results");
    ASSERT_EQ(results.size(), scores.size());
    for (const auto& result : results) {
      EXPECT_NEAR(result.at("score").get<double>(),
                  scores[result.at("index").get<size_t>()].get<double>(), kTolerance)
          << "record " << r << " passage " << result.at("index");
    }
  }
}

TEST_P(EmbedderParityTest, APromptNameTheBundleLacksIsRefusedNamingItsPrompts) {
  try {
    embed("instruction");
    FAIL() << "an unknown prompt name was accepted";
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("model.options.prompt"), std::string::npos) << message;
    EXPECT_NE(message.find("'instruction' is not a prompt of this bundle"), std::string::npos)
        << message;
    std::string names;  // the bundle's prompts, as the message lists them
    for (const auto& [name, text] : reference_.at("prompts").items()) {
      names += (names.empty() ? "" : ", ") + name;
    }
    EXPECT_NE(message.find("(its prompts: " + names + ")"), std::string::npos) << message;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, EmbedderParityTest,
    ::testing::Values(Case{"st_bert_tiny", "embedder_st_bert.json", "TokenizerJson"},
                      Case{"st_bert_vocab_tiny", "embedder_st_bert_vocab.json", "VocabTxtOnly"},
                      Case{"st_modernbert_tiny", "embedder_st_modernbert.json", "ModernBert"},
                      Case{"st_qwen3_tiny", "embedder_st_qwen3.json", "Qwen3"},
                      Case{"st_qwen2_tiny", "embedder_st_qwen2.json", "Qwen2"},
                      Case{"st_xlm-roberta_tiny", "embedder_st_xlm-roberta.json", "XlmRoberta"},
                      Case{"st_xlm-roberta_lower_tiny", "embedder_st_xlm-roberta_lower.json",
                           "LowerCasedText"}),
    testing::ParityCaseName());

}  // namespace
}  // namespace engine
