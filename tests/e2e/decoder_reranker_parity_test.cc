// The LLM rerankers that are templates in their bundles, against their own reference code on
// tiny random checkpoints of their architectures (tests/reference/decoder_reranker_reference.py):
// Qwen3-Reranker (qwen3, the model card's code), mxbai-rerank-v2 (qwen2, the mxbai-rerank
// package) and bge-reranker-v2-minicpm-layerwise (FlagEmbedding's LayerWiseFlagLLMReranker, the
// score head of layer 3 of 4). The exact ids of each pair, with the default instruction and with
// another, per job and per record; the scores in the batch job; bf16 rankings.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "engine/jobs/model_stage.h"
#include "engine/memory/counting_cpu_allocator.h"
#include "engine/memory/device_memory.h"
#include "engine/runtime/pair_scoring_adapter.h"
#include "models/registry.h"
#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::fixture_path;

constexpr double kTolerance = 1e-5;

using Case = testing::ParityCase;

class DecoderRerankerParityTest : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    models::register_model_families();
    bundle_ = fixture_path(GetParam().bundle);
    reference_ = testing::read_json(fixture_path(GetParam().reference));
    max_length_ = "task.max_length=" + std::to_string(reference_.at("max_length").get<int>());
  }

  // Score records of the reference's pairs; `instruction` adds each record's own.
  std::vector<std::string> score_records(const char* run, bool instruction) const {
    std::vector<std::string> lines;
    for (const auto& pair : reference_.at("runs").at(run)) {
      nlohmann::json record = {{"query", pair.at("query")}, {"passage", pair.at("passage")}};
      if (instruction) record["instruction"] = reference_.at("instruction");
      lines.push_back(record.dump());
    }
    return lines;
  }

  // Rerank records of the reference's 20 queries with their passages.
  std::vector<std::string> rerank_records() const {
    std::vector<std::string> lines;
    for (const auto& record : reference_.at("rerank")) {
      lines.push_back(
          nlohmann::json({{"query", record.at("query")}, {"passages", record.at("passages")}})
              .dump());
    }
    return lines;
  }

  void expect_scores(const std::vector<nlohmann::json>& outputs, const char* run,
                     const std::string& what) const {
    const auto& expected = reference_.at("runs").at(run);
    ASSERT_EQ(outputs.size(), expected.size()) << what;
    for (size_t i = 0; i < outputs.size(); ++i) {
      ASSERT_TRUE(outputs[i].contains("score")) << what << " pair " << i << ": " << outputs[i];
      EXPECT_NEAR(outputs[i].at("score").get<double>(), expected[i].at("score").get<double>(),
                  kTolerance)
          << what << " pair " << i;
    }
  }

  // A bundle loaded with its model, and its adapter for rerank with prefix reuse on or off.
  struct Loaded {
    Loaded(const std::string& path, bool reuse)
        : config(parse_config("model:\n  path: " + path +
                                  "\n  device: cpu\n  options:\n    prefix_reuse: " +
                                  (reuse ? "true" : "false") +
                                  "\ntask:\n  kind: rerank\n  max_length: 256\n",
                              "reuse.yaml", {}, ConfigUse::kServe)),
          bundle(load_bundle(config.model)),
          options(read_family_options(
              "llm_reranker", {*config.model.family_options, bundle.manifest, config.task})),
          adapter(make_adapter("llm_reranker", {bundle, config.task, *options})) {}
    Config config;
    ModelBundle bundle;
    std::shared_ptr<const FamilyOptions> options;
    std::unique_ptr<FamilyAdapter> adapter;
  };

  std::string bundle_;
  nlohmann::json reference_;
  std::string max_length_;
  testing::TempDir dir_;
};

TEST_P(DecoderRerankerParityTest, PairsAreBuiltAsTheReferenceBuildsThem) {
  ModelBundle bundle = load_bundle_without_model(bundle_);
  TaskConfig task;
  task.kind = TaskKind::kScore;
  task.max_length = reference_.at("max_length");
  const auto options = read_family_options(
      "llm_reranker", {ConfigNode::empty("model.options"), bundle.manifest, task});
  auto adapter = make_adapter("llm_reranker", {bundle, task, *options});
  const auto& scorer = dynamic_cast<const PairScoringAdapter&>(*adapter);
  size_t cut = 0;
  for (const char* run : {"default", "instruction"}) {
    const std::optional<std::string> instruction =
        std::string(run) == "default" ? std::nullopt
                                      : std::optional<std::string>(reference_.at("instruction"));
    for (const auto& pair : reference_.at("runs").at(run)) {
      const auto sequences = scorer.encode_pair(pair.at("query").get<std::string>(),
                                                pair.at("passage").get<std::string>(), instruction);
      ASSERT_EQ(sequences.size(), 1u);
      const auto expected = pair.at("input_ids").get<std::vector<int64_t>>();
      EXPECT_EQ(sequences[0].ids, expected)
          << run << " query: " << pair.at("query").get<std::string>().substr(0, 80);
      cut += expected.size() >= static_cast<size_t>(reference_.at("max_length").get<int>());
    }
  }
  EXPECT_GE(cut, 2u) << "the fixture must cut pairs at max_length";
}

TEST_P(DecoderRerankerParityTest, ScoresEqualTheReferenceInTheBatchJob) {
  for (const char* batch : {"batching.max_batch_size=1", "batching.max_batch_size=8"}) {
    expect_scores(testing::run_job(bundle_, score_records("default", false), "score",
                                   {max_length_, batch}, dir_),
                  "default", batch);
  }
}

TEST_P(DecoderRerankerParityTest, NormalizedScoresAreTheReferencesNormalizedOnes) {
  const auto outputs = testing::run_job(bundle_, score_records("default", false), "score",
                                        {max_length_, "task.normalize=true"}, dir_);
  const auto& expected = reference_.at("normalized");
  ASSERT_EQ(outputs.size(), expected.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    EXPECT_NEAR(outputs[i].at("score").get<double>(), expected[i].get<double>(), kTolerance)
        << "pair " << i;
  }
}

TEST_P(DecoderRerankerParityTest, AnInstructionPerJobOrPerRecordIsTheReferencesInstruction) {
  const std::string instruction = reference_.at("instruction");
  expect_scores(testing::run_job(bundle_, score_records("instruction", false), "score",
                                 {max_length_, "model.options.instruction=" + instruction}, dir_),
                "instruction", "per job");
  expect_scores(
      testing::run_job(bundle_, score_records("instruction", true), "score", {max_length_}, dir_),
      "instruction", "per record");
}

// The reference's rankings (20 queries, 4 passages each) from the rerank task: the fp32 bundle's
// scores within 1e-5 and its rankings the reference's. The same checkpoint traced in bf16 stays
// within bf16's rounding of the fp32 scores (5% of their spread) and its ranking agreement is
// printed: on random weights the passages of a query differ by less than bf16's error as often as
// not (docs/models.md has the figures), so a ranking bound belongs to trained checkpoints.
TEST_P(DecoderRerankerParityTest, RerankRankingsAreTheReferencesInFp32AndBf16) {
  const std::vector<std::string> lines = rerank_records();
  for (const std::string suffix : {"", "_bf16"}) {
    const auto outputs = testing::run_job(bundle_ + suffix, lines, "rerank", {max_length_}, dir_);
    ASSERT_EQ(outputs.size(), lines.size()) << suffix;
    size_t equal = 0;
    double worst = 0;
    for (size_t r = 0; r < outputs.size(); ++r) {
      const auto& scores = reference_.at("rerank")[r].at("scores");
      std::vector<size_t> want(scores.size());
      std::iota(want.begin(), want.end(), 0);
      std::stable_sort(want.begin(), want.end(), [&](size_t a, size_t b) {
        return scores[a].get<double>() > scores[b].get<double>();
      });
      std::vector<size_t> got;
      for (const auto& result : outputs[r].at("results")) {
        const auto index = result.at("index").get<size_t>();
        got.push_back(index);
        worst = std::max(worst,
                         std::abs(result.at("score").get<double>() - scores[index].get<double>()));
      }
      equal += got == want;
    }
    std::cout << GetParam().name << (suffix.empty() ? " fp32" : " bf16") << ": " << equal << "/"
              << outputs.size() << " rankings equal, max |score - reference| = " << worst << "\n";
    if (suffix.empty()) {
      EXPECT_LE(worst, kTolerance);
      EXPECT_EQ(equal, outputs.size());
    } else {
      double lowest = 1e300, highest = -1e300;
      for (const auto& record : reference_.at("rerank")) {
        for (const auto& score : record.at("scores")) {
          lowest = std::min(lowest, score.get<double>());
          highest = std::max(highest, score.get<double>());
        }
      }
      EXPECT_LE(worst, 0.05 * (highest - lowest));
      EXPECT_GT(worst, 0.0) << "the bf16 bundle computed in fp32";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Rerankers, DecoderRerankerParityTest,
    ::testing::Values(Case{"qwen3_reranker_tiny", "qwen3_reranker_256.json", "Qwen3Reranker"},
                      Case{"mxbai_rerank_tiny", "mxbai_rerank_256.json", "MxbaiRerankV2"},
                      Case{"minicpm_layerwise_tiny", "minicpm_layerwise_256.json",
                           "MiniCpmLayerwise"}),
    testing::ParityCaseName());

// A record's shared prefix (template prefix, instruction and query) run once, its passages'
// remainders after it: the scores of the whole sequences (the bound 1e-4; fp32 gives a
// few 1e-7), for records whose passages land in one batch and for records split over several.
TEST_P(DecoderRerankerParityTest, PrefixReuseGivesTheScoresOfWholeSequences) {
  const std::vector<std::string> lines = rerank_records();
  const auto whole = testing::run_job(bundle_, lines, "rerank",
                                      {max_length_, "model.options.prefix_reuse=false"}, dir_);
  for (const char* batch : {"batching.max_batch_size=16", "batching.max_batch_size=3"}) {
    const auto reused = testing::run_job(bundle_, lines, "rerank", {max_length_, batch}, dir_);
    ASSERT_EQ(reused.size(), whole.size());
    double worst = 0;
    for (size_t r = 0; r < reused.size(); ++r) {
      std::map<size_t, double> want;
      for (const auto& result : whole[r].at("results")) {
        want[result.at("index").get<size_t>()] = result.at("score").get<double>();
      }
      for (const auto& result : reused[r].at("results")) {
        worst = std::max(worst, std::abs(result.at("score").get<double>() -
                                         want.at(result.at("index").get<size_t>())));
      }
    }
    std::cout << GetParam().name << " " << batch << ": max |reused - whole| = " << worst << "\n";
    EXPECT_LE(worst, 1e-4) << batch;
  }

  // The adapter says it reuses prefixes, and does so only where the bundle lets it.
  for (const bool reuse : {true, false}) {
    const Loaded loaded(bundle_, reuse);
    EXPECT_EQ(loaded.adapter->describe().find("shared prefix runs once") != std::string::npos,
              reuse)
        << loaded.adapter->describe();
  }
}

// A record's passages split over batches of two: the later batches continue from the prefix's
// keys and values kept from the first, and once the round is done none of them stay allocated
// (a server's adapter lives from request to request).
TEST_P(DecoderRerankerParityTest, NothingOfASharedPrefixStaysAllocatedAfterItsRound) {
  Loaded loaded(bundle_, true);
  loaded.config.batching.max_batch_size = 2;
  const auto& scorer = dynamic_cast<const PairScoringAdapter&>(*loaded.adapter);
  const auto& record = reference_.at("rerank").at(0);
  std::vector<Encoding> encodings;
  for (int copy = 0; copy < 3; ++copy) {
    for (const auto& passage : record.at("passages")) {
      encodings.push_back(scorer.encode_pair(record.at("query").get<std::string>(),
                                             passage.get<std::string>(), std::nullopt)[0]);
    }
  }
  std::vector<const Encoding*> sequences;
  for (const Encoding& encoding : encodings) sequences.push_back(&encoding);
  ASSERT_GT(sequences.size(), 2u);

  const std::unique_ptr<DeviceMemory> memory = make_host_memory(0);
  ModelStage stage(loaded.config, *loaded.adapter, *memory);
  const int64_t before = CountingCpuAllocator::install().allocated();
  const BatchOutcome outcome = stage.run(sequences, nullptr);
  EXPECT_EQ(CountingCpuAllocator::install().allocated(), before);
  const size_t passages = record.at("passages").size();
  for (size_t i = 0; i < sequences.size(); ++i) {
    EXPECT_EQ(outcome.errors[i], "") << i;
    // The same pair gives the same score in whichever batch it ran, with or without the kept
    // prefix.
    EXPECT_NEAR(outcome.results[i].score, outcome.results[i % passages].score, 1e-5) << i;
  }
}

TEST(RecordInstructionTest, IsRefusedByAModelWhosePairsHaveNoPlaceForOne) {
  models::register_model_families();
  testing::TempDir dir;
  const std::string line =
      nlohmann::json({{"query", "q"}, {"passage", "p"}, {"instruction", "x"}}).dump();
  const auto outputs = testing::run_job(fixture_path("xlmr_tiny"), {line}, "score", {}, dir);
  ASSERT_EQ(outputs.size(), 1u);
  ASSERT_TRUE(outputs[0].contains("error")) << outputs[0];
  EXPECT_NE(outputs[0].at("error").get<std::string>().find("no place for one"), std::string::npos)
      << outputs[0];
}

}  // namespace
}  // namespace engine
