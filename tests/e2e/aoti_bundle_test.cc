// Bundles whose model is an AOTInductor package (tools/export.py --format aoti, engine.json
// model_format aoti): the same scores as FlagReranker and as the TorchScript bundle of the same
// checkpoint, whatever the batch, and a clear refusal of what a compiled package cannot do or was
// not compiled for.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/common/cpu_features.h"
#include "engine/common/error.h"
#include "engine/runtime/model_bundle.h"
#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::fixture_path;
using testing::read_file;
using testing::read_lines;
using testing::TempDir;
using testing::write_file;

double max_difference(const std::vector<nlohmann::json>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    worst = std::max(worst, std::abs(a[i].at("score").get<double>() - b[i]));
  }
  return worst;
}

std::vector<double> scores(const std::vector<nlohmann::json>& lines) {
  std::vector<double> result;
  for (const auto& line : lines) result.push_back(line.at("score").get<double>());
  return result;
}

TEST(AotiBundleTest, ScoresEqualFlagRerankerAndTheTorchScriptBundleInEveryBatch) {
  TempDir dir;
  const auto pairs = read_lines(fixture_path("pairs.jsonl"));
  const auto flag = testing::read_json(fixture_path("flag_reranker_512.json")).at("raw");
  const std::vector<double> reference = flag.get<std::vector<double>>();
  const std::vector<std::string> common = {"task.max_length=512"};
  const auto torchscript = testing::run_job(fixture_path("xlmr_tiny"), pairs, "score", common, dir);
  // One sequence per batch (sizes of 1 are symbolic in the package), and many.
  for (const char* batch : {"batching.max_batch_size=1", "batching.max_batch_size=16"}) {
    auto overrides = common;
    overrides.push_back(batch);
    JobSummary summary;
    const auto package =
        testing::run_job(fixture_path("xlmr_tiny_aoti"), pairs, "score", overrides, dir, &summary);
    EXPECT_EQ(summary.records, static_cast<int64_t>(pairs.size()));
    EXPECT_LE(max_difference(package, reference), 1e-5) << batch << " against FlagReranker";
    EXPECT_LE(max_difference(package, scores(torchscript)), 1e-5)
        << batch << " against TorchScript";
  }
}

class AotiRefusalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::copy(fixture_path("xlmr_tiny_aoti"), dir_.path("bundle"),
                          std::filesystem::copy_options::recursive);
  }

  void edit_manifest(const std::function<void(nlohmann::json&)>& edit) {
    auto manifest = nlohmann::json::parse(read_file(dir_.path("bundle/engine.json")));
    edit(manifest);
    write_file(dir_.path("bundle/engine.json"), manifest.dump(2));
  }

  // load_bundle's ConfigError for `settings` (key=value), or "" when the bundle loads.
  std::string refusal(const std::vector<std::pair<std::string, std::string>>& settings = {}) {
    ModelConfig config;
    config.path = dir_.path("bundle");
    config.device = "cpu";
    for (const auto& [key, value] : settings) {
      if (key == "dtype") config.dtype = value;
      if (key == "quantize") config.quantize = value;
      if (key == "embedding_dtype") config.embedding_dtype = value;
    }
    try {
      load_bundle(config);
      return "";
    } catch (const ConfigError& error) {
      return error.what();
    }
  }

  TempDir dir_;
};

TEST_F(AotiRefusalTest, APackageForACpuWithMoreFeaturesIsRefusedNamingBoth) {
  ASSERT_EQ(refusal(), "") << "the package as exported loads";
  // A feature this engine does not know how to check is not vouched for either.
  edit_manifest([](nlohmann::json& manifest) {
    manifest["compiled_for"]["vector_isa"] = "avx10";
    manifest["compiled_for"]["cpu_features"].push_back("avx10.2-512");
  });
  std::string message = refusal();
  EXPECT_NE(message.find("compiled for a CPU with avx10 ("), std::string::npos) << message;
  EXPECT_NE(message.find("this CPU cannot check avx10.2-512"), std::string::npos) << message;
  if (!*cpu_has("avx512fp16")) {
    edit_manifest([](nlohmann::json& manifest) {
      manifest["compiled_for"]["cpu_features"] = {"avx2", "avx512fp16"};
    });
    message = refusal();
    EXPECT_NE(message.find("avx2, avx512fp16), and this CPU lacks avx512fp16"), std::string::npos)
        << message;
  }
  edit_manifest([](nlohmann::json& manifest) { manifest["compiled_for"].erase("cpu_features"); });
  EXPECT_NE(refusal().find("compiled_for: required key 'cpu_features' is missing"),
            std::string::npos);
}

TEST_F(AotiRefusalTest, WhatOnlyATorchScriptGraphCanDoIsRefusedNotIgnored) {
  EXPECT_NE(refusal({{"quantize", "int8"}}).find("model.quantize int8 rewrites a TorchScript"),
            std::string::npos);
  EXPECT_NE(refusal({{"dtype", "bf16"}})
                .find("compiled in float32 and runs in it only, not in "
                      "bfloat16"),
            std::string::npos)
      << refusal({{"dtype", "bf16"}});
  EXPECT_NE(refusal({{"embedding_dtype", "int8"}}).find("cannot change a compiled package's table"),
            std::string::npos)
      << refusal({{"embedding_dtype", "int8"}});
}

}  // namespace
}  // namespace engine
