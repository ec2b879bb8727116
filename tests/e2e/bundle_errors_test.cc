// A broken bundle stops the job before it starts, with exit status 2 and a message that says
// which file is wrong and how.
#include <filesystem>

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::fixture_path;
using testing::read_file;
using testing::run_command;
using testing::TempDir;
using testing::write_file;

class BundleErrorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.path("bundle"));
    for (const char* file : {"engine.json", "model.pt", "sentencepiece.bpe.model"}) {
      std::filesystem::copy_file(fixture_path(std::string("xlmr_tiny/") + file),
                                 dir_.path(std::string("bundle/") + file));
    }
    write_file(dir_.path("in.jsonl"), R"({"id": 1, "query": "q", "passages": ["p"]})"
                                      "\n");
    write_file(
        dir_.path("job.yaml"),
        testing::job_config(dir_.path("bundle"), dir_.path("in.jsonl"), dir_.path("out.jsonl")));
  }

  void edit_manifest(const std::function<void(nlohmann::json&)>& edit) {
    auto manifest = nlohmann::json::parse(read_file(dir_.path("bundle/engine.json")));
    edit(manifest);
    write_file(dir_.path("bundle/engine.json"), manifest.dump(2));
  }

  // Runs the job and expects exit status 2 with `message` in the output, and no output file.
  void expect_refused(const std::string& message, const std::string& extra = "") {
    const auto result =
        run_command(testing::engine_binary() + " --config " + dir_.path("job.yaml") + extra);
    EXPECT_EQ(result.status, 2) << result.output;
    EXPECT_NE(result.output.find(message), std::string::npos) << result.output;
    EXPECT_FALSE(std::filesystem::exists(dir_.path("out.jsonl")));
  }

  TempDir dir_;
};

TEST_F(BundleErrorsTest, IntactCopyRuns) {
  const auto result = run_command(testing::engine_binary() + " --config " + dir_.path("job.yaml"));
  EXPECT_EQ(result.status, 0) << result.output;
  EXPECT_TRUE(std::filesystem::exists(dir_.path("out.jsonl")));
}

TEST_F(BundleErrorsTest, MissingModelFile) {
  std::filesystem::remove(dir_.path("bundle/model.pt"));
  expect_refused("model.pt' is missing");
}

TEST_F(BundleErrorsTest, CorruptModelFileFailsTheChecksum) {
  std::string bytes = read_file(dir_.path("bundle/model.pt"));
  bytes[bytes.size() / 2] ^= 0x5A;
  write_file(dir_.path("bundle/model.pt"), bytes);
  expect_refused("is corrupt or was replaced: its SHA-256 is");
}

TEST_F(BundleErrorsTest, TruncatedModelFileCannotBeLoaded) {
  const std::string bytes = read_file(dir_.path("bundle/model.pt"));
  write_file(dir_.path("bundle/model.pt"), bytes.substr(0, bytes.size() / 2));
  expect_refused("cannot be loaded as TorchScript", " --set model.verify_checksum=false");
}

TEST_F(BundleErrorsTest, ManifestVocabularyLargerThanTheEmbeddingTable) {
  edit_manifest([](nlohmann::json& manifest) { manifest["vocab_size"] = 250002; });
  expect_refused(
      "vocab_size is 250002 but the model's embedding table "
      "'model.roberta.embeddings.word_embeddings.weight' has only 1002 rows");
}

TEST_F(BundleErrorsTest, ManifestVocabularyDisagreesWithTheTokenizer) {
  edit_manifest([](nlohmann::json& manifest) { manifest["vocab_size"] = 900; });
  expect_refused("vocab_size is 900 but the tokenizer 'sentencepiece.bpe.model' has 1002 ids");
}

TEST_F(BundleErrorsTest, ManifestProblemsNameTheKey) {
  edit_manifest([](nlohmann::json& manifest) { manifest.erase("max_positions"); });
  expect_refused("engine.json: required key 'max_positions' is missing");
  edit_manifest([](nlohmann::json& manifest) { manifest["max_positions"] = "many"; });
  expect_refused("engine.json: max_positions: expected integer, found string");
  edit_manifest([](nlohmann::json& manifest) {
    manifest["max_positions"] = 512;
    manifest["family"] = "unheard_of";
  });
  expect_refused("family 'unheard_of' is not served by this engine; known families: ");
  expect_refused("cross_encoder");
  edit_manifest([](nlohmann::json& manifest) {
    manifest["family"] = "cross_encoder";
    manifest["embedding_parameter"] = "model.nothing.weight";
  });
  expect_refused("embedding_parameter 'model.nothing.weight' is not a parameter");
  write_file(dir_.path("bundle/engine.json"), "{ not json");
  expect_refused("engine.json: not valid JSON");
}

TEST_F(BundleErrorsTest, TokenizerProblems) {
  edit_manifest([](nlohmann::json& manifest) { manifest["tokenizer"]["kind"] = "bpe_magic"; });
  expect_refused("tokenizer kind 'bpe_magic' is not supported");
  edit_manifest(
      [](nlohmann::json& manifest) { manifest["tokenizer"]["kind"] = "xlmr_sentencepiece"; });
  write_file(dir_.path("bundle/sentencepiece.bpe.model"), "garbage");
  expect_refused("cannot load sentencepiece model");
  std::filesystem::remove(dir_.path("bundle/sentencepiece.bpe.model"));
  expect_refused("sentencepiece model '" + dir_.path("bundle/sentencepiece.bpe.model") +
                 "' does not exist");
}

TEST_F(BundleErrorsTest, MissingManifest) {
  std::filesystem::remove(dir_.path("bundle/engine.json"));
  expect_refused("engine.json cannot be read");
}

}  // namespace
}  // namespace engine
