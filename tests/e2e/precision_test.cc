// Precision plans on the tiny reranker: floating-point tensors cast, integer buffers left int64,
// the embedding table in a dtype of its own, and scores close to fp32's.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "engine/common/error.h"
#include "engine/memory/counting_cpu_allocator.h"
#include "engine/runtime/int8_linear.h"
#include "engine/runtime/precision_plan.h"
#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::fixture_path;

ModelBundle load_tiny(const std::string& dtype, const std::string& embedding_dtype = "same") {
  ModelConfig config;
  config.path = fixture_path("xlmr_tiny");
  config.device = "cpu";
  config.dtype = dtype;
  config.embedding_dtype = embedding_dtype;
  return load_bundle(config);
}

// The largest |score| difference between two jobs' outputs of the same length, line by line.
double max_score_difference(const std::vector<nlohmann::json>& a,
                            const std::vector<nlohmann::json>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst =
        std::max(worst, std::abs(a[i].at("score").get<double>() - b[i].at("score").get<double>()));
  }
  return worst;
}

// Integer buffers stay int64; matrices take the plan's dtype; vectors (biases, LayerNorm weights)
// and the table's row scale stay float32, as tools/export.py --dtype stores them.
TEST(PrecisionTest, IntegerBuffersStayInt64AndVectorsFloat32UnderEveryPlan) {
  for (const auto& [dtype, embedding] :
       std::vector<std::pair<std::string, std::string>>{{"fp32", "same"},
                                                        {"bf16", "same"},
                                                        {"fp32", "bf16"},
                                                        {"auto", "same"},
                                                        {"bf16", "int8"}}) {
    ModelBundle bundle = load_tiny(dtype, embedding);
    size_t integer_buffers = 0, vectors = 0, matrices = 0;
    for (const auto& [name, tensor] : bundle.model->named_tensors()) {
      const std::string where = name + " under " + dtype + "/" + embedding;
      if (name == bundle.manifest.embedding_parameter) {
        const c10::ScalarType expected =
            embedding == "int8" ? c10::kChar
                                : bundle.precision.embedding_dtype.value_or(bundle.dtype);
        EXPECT_EQ(tensor.scalar_type(), expected) << where;
      } else if (!tensor.is_floating_point()) {
        EXPECT_EQ(tensor.scalar_type(), c10::kLong) << where;
        ++integer_buffers;
      } else if (tensor.dim() <= 1 || name == bundle.manifest.embedding_scale) {
        EXPECT_EQ(tensor.scalar_type(), c10::kFloat) << where;
        ++vectors;
      } else {
        EXPECT_EQ(tensor.scalar_type(), bundle.dtype) << where;
        ++matrices;
      }
    }
    EXPECT_GT(integer_buffers, 0u) << "the model has position-id buffers to keep";
    EXPECT_GT(vectors, 0u);
    EXPECT_GT(matrices, 0u);
  }
}

TEST(PrecisionTest, LowerPrecisionScoresStayCloseToFp32) {
  testing::TempDir dir;
  const auto pairs = testing::read_lines(fixture_path("pairs.jsonl"));
  const auto reference = testing::run_job(fixture_path("xlmr_tiny"), pairs, "score", {}, dir);
  for (const auto& setting :
       {std::string("model.dtype=bf16"), std::string("model.embedding_dtype=bf16"),
        std::string("model.embedding_dtype=int8")}) {
    const auto outputs =
        testing::run_job(fixture_path("xlmr_tiny"), pairs, "score", {setting}, dir);
    ASSERT_EQ(outputs.size(), reference.size());
    const double worst = max_score_difference(outputs, reference);
    std::cout << setting << ": max |score - fp32 score| = " << worst << "\n";
    EXPECT_LE(worst, 0.05) << setting;
    EXPECT_GT(worst, 0.0) << setting << " must actually change the arithmetic";
  }
}

TEST(PrecisionTest, ABf16BundleLoadsAtItsFinalSizeWithoutAnFp32Copy) {
  CountingCpuAllocator& counts = CountingCpuAllocator::install();
  const int64_t before = counts.allocated();
  counts.reset_peak();
  ModelConfig config;
  config.path = fixture_path("xlmr_tiny_bf16");
  config.device = "cpu";
  ModelBundle bundle = load_bundle(config);
  EXPECT_EQ(bundle.dtype, c10::kBFloat16) << "model.dtype bundle takes the exported dtype";
  const int64_t resident = counts.allocated() - before;
  const int64_t peak = counts.peak() - before;
  std::cout << "bf16 bundle: resident " << resident << " bytes, load peak " << peak << "\n";
  EXPECT_LE(static_cast<double>(peak), 1.1 * static_cast<double>(resident));

  // Loading the fp32 bundle as bf16 goes through the fp32 tensors: a peak well above resident.
  counts.reset_peak();
  const int64_t before_cast = counts.allocated();
  ModelBundle cast = load_tiny("bf16");
  EXPECT_GT(static_cast<double>(counts.peak() - before_cast),
            1.5 * static_cast<double>(counts.allocated() - before_cast));

  // Traced in bf16, every tensor included (LayerNorm parameters too, as model.half() would): its
  // scores are close to fp32's, and not fp32's.
  testing::TempDir dir;
  const auto pairs = testing::read_lines(fixture_path("pairs.jsonl"));
  const auto reference = testing::run_job(fixture_path("xlmr_tiny"), pairs, "score", {}, dir);
  const auto outputs = testing::run_job(fixture_path("xlmr_tiny_bf16"), pairs, "score", {}, dir);
  ASSERT_EQ(outputs.size(), reference.size());
  const double worst = max_score_difference(outputs, reference);
  std::cout << "bf16 graph: max |score - fp32 score| = " << worst << "\n";
  EXPECT_LE(worst, 0.05);
  EXPECT_GT(worst, 0.0);
}

// A graph traced in bf16 runs in bf16 only: `auto` takes it, another dtype is refused by name,
// and an int8 table (quantised at load) keeps its scale in the graph's dtype.
TEST(PrecisionTest, ABundleTracedInBf16RunsInBf16Only) {
  ModelConfig config;
  config.path = fixture_path("xlmr_tiny_bf16");
  config.device = "cpu";
  config.dtype = "auto";
  EXPECT_EQ(load_bundle(config).dtype, c10::kBFloat16);
  config.dtype = "fp32";
  try {
    load_bundle(config);
    FAIL() << "fp32 must be refused for a graph traced in bf16";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what())
                  .find("model.dtype fp32 cannot run this bundle: its graph "
                        "was traced in bfloat16"),
              std::string::npos)
        << error.what();
  }
  testing::TempDir dir;
  const auto pairs = testing::read_lines(fixture_path("pairs.jsonl"));
  const auto bf16 = testing::run_job(fixture_path("xlmr_tiny_bf16"), pairs, "score", {}, dir);
  const auto int8 = testing::run_job(fixture_path("xlmr_tiny_bf16"), pairs, "score",
                                     {"model.embedding_dtype=int8"}, dir);
  ASSERT_EQ(int8.size(), bf16.size());
  EXPECT_LE(max_score_difference(int8, bf16), 0.05);
}

// The int8 table exported apart from model.pt: the same scores as quantising at load (the exporter
// and the engine use the same rule), and the table is a read-only mapping of the file, not a copy.
TEST(PrecisionTest, AnInt8TableStoredApartIsMappedAndScoresAsQuantisedAtLoad) {
  testing::TempDir dir;
  const auto pairs = testing::read_lines(fixture_path("pairs.jsonl"));
  const auto expected = testing::run_job(fixture_path("xlmr_tiny"), pairs, "score",
                                         {"model.embedding_dtype=int8"}, dir);
  const auto outputs = testing::run_job(fixture_path("xlmr_tiny_int8"), pairs, "score", {}, dir);
  ASSERT_EQ(outputs.size(), expected.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    EXPECT_NEAR(outputs[i].at("score").get<double>(), expected[i].at("score").get<double>(), 1e-6)
        << "pair " << i;
  }

  ModelConfig config;
  config.path = fixture_path("xlmr_tiny_int8");
  config.device = "cpu";
  ModelBundle bundle = load_bundle(config);
  const auto address = [&] {
    for (const auto& [name, tensor] : bundle.model->named_tensors()) {
      if (name == bundle.manifest.embedding_parameter) {
        EXPECT_EQ(tensor.scalar_type(), c10::kChar);
        EXPECT_EQ(tensor.size(0), bundle.manifest.embedding_table.rows);
        return reinterpret_cast<uintptr_t>(tensor.data_ptr());
      }
    }
    return uintptr_t{0};
  }();
  std::ifstream maps("/proc/self/maps");
  std::string line;
  bool mapped = false;
  while (std::getline(maps, line)) {
    uintptr_t start = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &start, &end) != 2) continue;
    if (address >= start && address < end) {
      mapped = line.find("embeddings.int8") != std::string::npos;
      EXPECT_TRUE(mapped) << line;
    }
  }
  EXPECT_TRUE(mapped) << "the table's memory is a mapping of embeddings.int8";

  config.embedding_dtype = "bf16";
  EXPECT_THROW(load_bundle(config), ConfigError) << "a stored int8 table cannot become bf16";
}

TEST(PrecisionTest, ACorruptOrTruncatedTableFileIsRefused) {
  testing::TempDir dir;
  const std::string copy = dir.path("bundle");
  std::filesystem::copy(fixture_path("xlmr_tiny_int8"), copy,
                        std::filesystem::copy_options::recursive);
  ModelConfig config;
  config.path = copy;
  config.device = "cpu";
  const std::string table = copy + "/embeddings.int8";
  const auto size = std::filesystem::file_size(table);
  {
    std::fstream file(table, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(static_cast<std::streamoff>(size / 2));
    const char byte = static_cast<char>(file.get());
    file.seekp(static_cast<std::streamoff>(size / 2));
    file.put(static_cast<char>(~byte));
  }
  try {
    load_bundle(config);
    FAIL() << "a changed table must be refused";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("embeddings.int8' is corrupt"), std::string::npos)
        << error.what();
  }
  std::filesystem::resize_file(table, size - 1);
  try {
    load_bundle(config);
    FAIL() << "a truncated table must be refused";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("holds " + std::to_string(size - 1) + " bytes"),
              std::string::npos)
        << error.what();
  }
}

TEST(PrecisionTest, Fp16OnTheCpuIsRefusedWhereItIsSlower) {
  const bool slower = cpu_matmul_gflops(c10::kHalf) <= cpu_matmul_gflops(c10::kFloat);
  ModelConfig config;
  config.dtype = "fp16";
  if (!slower) GTEST_SKIP() << "fp16 is faster than fp32 on this CPU";
  try {
    make_precision_plan(config, c10::Device(c10::kCPU));
    FAIL() << "fp16 must be refused on a CPU where it is slower";
  } catch (const ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("fp16 is slower than fp32 on this CPU"),
              std::string::npos);
  }
}

// model.graph onednn (the default: linear layers as oneDNN primitives on the CPU) and fused
// (frozen, and fused through oneDNN Graph where the graph runs in its own dtype): the scores stay
// those of the graph as exported, over batches of every size the job makes. Batches of 4 make ten
// calls, so the profiling executor's optimized graph (from the second call on) scores most pairs.
TEST(PrecisionTest, EveryGraphModeScoresAsThePlainGraph) {
  testing::TempDir dir;
  const auto pairs = testing::read_lines(fixture_path("pairs.jsonl"));
  for (const auto& [bundle, dtype] : std::vector<std::pair<std::string, std::string>>{
           {"xlmr_tiny", "fp32"}, {"xlmr_tiny", "bf16"}, {"xlmr_tiny_bf16", "bundle"}}) {
    const std::vector<std::string> common = {"model.dtype=" + dtype, "batching.max_batch_size=4"};
    auto plain_settings = common;
    plain_settings.push_back("model.graph=plain");
    const auto plain = testing::run_job(fixture_path(bundle), pairs, "score", plain_settings, dir);
    for (const std::string mode : {"onednn", "fused"}) {
      auto settings = common;
      settings.push_back("model.graph=" + mode);
      const auto outputs = testing::run_job(fixture_path(bundle), pairs, "score", settings, dir);
      ASSERT_EQ(outputs.size(), plain.size());
      const double worst = max_score_difference(outputs, plain);
      std::cout << bundle << " " << dtype << ": max |" << mode << " - plain| = " << worst << "\n";
      EXPECT_LE(worst, dtype == "fp32" ? 1e-5 : 2e-2) << bundle << " " << dtype << " " << mode;
    }
  }
}

TEST(PrecisionTest, AFrozenGraphStillCountsEveryWeightByte) {
  ModelConfig config;
  config.path = fixture_path("xlmr_tiny");
  config.device = "cpu";
  const auto bytes = [](const ModelBundle& bundle) {
    int64_t total = 0;
    for (const auto& [name, tensor] : bundle.model->named_tensors()) {
      total += static_cast<int64_t>(tensor.numel() * tensor.element_size());
    }
    return total;
  };
  const int64_t plain = bytes(load_bundle(config));
  config.graph = "fused";
  const ModelBundle frozen = load_bundle(config);
  const auto tensors = frozen.model->named_tensors();
  ASSERT_FALSE(tensors.empty());
  EXPECT_EQ(tensors.front().first.rfind("constant.", 0), 0u) << tensors.front().first;
  // Frozen passes may fold small tensors together, never drop the weights.
  EXPECT_GE(bytes(frozen), plain * 9 / 10);
}

// Where int8 products do not run (no VNNI, as on AVX2-only CPUs), model.quantize int8 is refused
// saying so, never run some slow or wrong way; where they run, the bundle loads with them.
TEST(PrecisionTest, Int8IsRefusedWhereItsKernelsDoNotRunAndLoadsWhereTheyDo) {
  ModelConfig config;
  config.path = fixture_path("xlmr_tiny");
  config.device = "cpu";
  config.quantize = "int8";
  std::string refusal;
  try {
    load_bundle(config);
  } catch (const ConfigError& error) {
    refusal = error.what();
  }
  if (int8_linear_available()) {
    EXPECT_EQ(refusal, "");
  } else {
    EXPECT_NE(refusal.find("model.quantize: int8 needs a CPU with VNNI"), std::string::npos)
        << refusal;
  }
}

// model.quantize int8 on every family, under an fp32 and a bf16 graph: each score within 15% of
// the spread of fp32's scores (measured: 3% to 8% on these two-layer random models, whose widths
// of 32 and 64 make int8's relative rounding larger than a real model's), and not equal to it
// (the layers did run in int8).
TEST(PrecisionTest, Int8LinearLayersScoreEveryFamilyCloseToFp32) {
  if (!int8_linear_available()) GTEST_SKIP() << "this CPU or LibTorch runs no int8 products";
  testing::TempDir dir;
  const auto pairs = testing::read_lines(fixture_path("pairs.jsonl"));
  for (const std::string bundle : {"xlmr_tiny", "sbert_tiny", "m3_tiny", "llm_tiny"}) {
    const std::vector<std::string> common = {"batching.max_batch_size=4", "task.max_length=128"};
    const auto reference = testing::run_job(fixture_path(bundle), pairs, "score", common, dir);
    double lowest = 1e300, highest = -1e300;
    for (const auto& line : reference) {
      lowest = std::min(lowest, line.at("score").get<double>());
      highest = std::max(highest, line.at("score").get<double>());
    }
    for (const std::string dtype : {"fp32", "bf16"}) {
      auto settings = common;
      settings.push_back("model.dtype=" + dtype);
      settings.push_back("model.quantize=int8");
      const auto outputs = testing::run_job(fixture_path(bundle), pairs, "score", settings, dir);
      ASSERT_EQ(outputs.size(), reference.size()) << bundle;
      const double worst = max_score_difference(outputs, reference);
      std::cout << bundle << " " << dtype << " int8: max |score - fp32 score| = " << worst
                << " (fp32 scores span " << highest - lowest << ")\n";
      EXPECT_LE(worst, 0.15 * (highest - lowest)) << bundle << " " << dtype;
      EXPECT_GT(worst, 0.0) << bundle << " " << dtype << ": nothing ran in int8";
    }
  }
}

// int8 inputs are scaled per token, so a pair scores the same alone as in a batch of others:
// within fp32's rounding across batch sizes and paddings (a scale shared by the batch moved
// scores by about 1e-2 here).
TEST(PrecisionTest, Int8ScoresDoNotDependOnTheBatch) {
  if (!int8_linear_available()) GTEST_SKIP() << "this CPU or LibTorch runs no int8 products";
  testing::TempDir dir;
  const auto pairs = testing::read_lines(fixture_path("pairs.jsonl"));
  for (const std::string bundle : {"xlmr_tiny", "llm_tiny"}) {
    const std::vector<std::string> int8 = {"model.quantize=int8", "task.max_length=128"};
    auto batched = int8;
    batched.push_back("batching.max_batch_size=16");
    auto alone = int8;
    alone.push_back("batching.max_batch_size=1");
    alone.push_back("batching.pad_multiple=1");
    const auto together = testing::run_job(fixture_path(bundle), pairs, "score", batched, dir);
    const auto single = testing::run_job(fixture_path(bundle), pairs, "score", alone, dir);
    ASSERT_EQ(single.size(), together.size()) << bundle;
    EXPECT_LE(max_score_difference(single, together), 1e-5) << bundle;
  }
}

// The packed int8 weights replace the floating-point ones: fewer bytes than fp32 and than bf16.
TEST(PrecisionTest, Int8LinearLayersWeighLessThanBf16Ones) {
  if (!int8_linear_available()) GTEST_SKIP() << "this CPU or LibTorch runs no int8 products";
  ModelConfig config;
  config.path = fixture_path("llm_tiny");
  config.device = "cpu";
  const auto weights = [&](const std::string& dtype, const std::string& quantize) {
    config.dtype = dtype;
    config.quantize = quantize;
    const ModelBundle bundle = load_bundle(config);
    int64_t total = 0, int8 = 0;
    for (const auto& [name, tensor] : bundle.model->named_tensors()) {
      const auto bytes = static_cast<int64_t>(tensor.numel() * tensor.element_size());
      total += bytes;
      if (tensor.scalar_type() == at::kChar) int8 += bytes;
    }
    return std::make_pair(total, int8);
  };
  const auto [bf16, bf16_int8] = weights("bf16", "none");
  const auto [quantized, quantized_int8] = weights("bf16", "int8");
  EXPECT_EQ(bf16_int8, 0);
  EXPECT_GT(quantized_int8, 0);
  EXPECT_LT(quantized, bf16);
}

}  // namespace
}  // namespace engine
