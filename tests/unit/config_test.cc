#include "engine/config/config.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "engine/common/error.h"
#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::TempDir;
using testing::write_file;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.path("bundle"));
    write_file(dir_.path("in.jsonl"), "{}\n");
  }

  // A valid config with `extra` appended to the task section.
  std::string config_text(const std::string& task_extra = "") const {
    return "model:\n  path: bundle\n"
           "task:\n  kind: rerank\n" +
           task_extra +
           "input:\n  path: in.jsonl\n"
           "output:\n  path: out/result.jsonl\n";
  }

  // The ConfigError message for `text`, or "" when it parses.
  std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
    try {
      parse_config(text, file(), overrides);
    } catch (const ConfigError& error) {
      return error.what();
    }
    return "";
  }

  std::string file() const { return dir_.path("job.yaml"); }

  TempDir dir_;
};

TEST_F(ConfigTest, DefaultsAndPathsRelativeToTheConfigFile) {
  Config config = parse_config(config_text(), file());
  EXPECT_EQ(config.model.path, dir_.path("bundle"));
  EXPECT_EQ(config.io.input_path, dir_.path("in.jsonl"));
  EXPECT_EQ(config.io.output_path, dir_.path("out/result.jsonl"));
  EXPECT_EQ(config.model.device, "auto");
  EXPECT_EQ(config.model.dtype, "bundle");
  EXPECT_EQ(config.model.threads, 0);
  EXPECT_EQ(config.task.kind, TaskKind::kRerank);
  EXPECT_EQ(config.task.max_length, 512);
  EXPECT_FALSE(config.task.normalize);
  EXPECT_EQ(config.task.top_k, 0);
  EXPECT_EQ(config.batching.max_batch_size, 32);
  EXPECT_EQ(config.batching.max_tokens, 16384);
  EXPECT_EQ(config.io.max_line_bytes, 64LL << 20);
}

TEST_F(ConfigTest, ReadsEveryKey) {
  Config config = parse_config(
      "model:\n  path: bundle\n  device: cpu\n  dtype: bf16\n  threads: 3\n"
      "  verify_checksum: false\n"
      "  graph: plain\n"
      "task:\n  kind: score\n  max_length: 128\n  normalize: true\n  top_k: 5\n"
      "batching:\n  max_batch_size: 7\n  max_tokens: 4096\n  window: 100\n  pad_multiple: 1\n"
      "input:\n  path: in.jsonl\n  max_line_bytes: 2MiB\n"
      "output:\n  path: o.jsonl\n"
      "logging:\n  level: debug\n  progress_interval_s: 0.5\n",
      file());
  EXPECT_EQ(config.model.device, "cpu");
  EXPECT_EQ(config.model.dtype, "bf16");
  EXPECT_EQ(config.model.threads, 3);
  EXPECT_FALSE(config.model.verify_checksum);
  EXPECT_EQ(config.model.graph, "plain");
  EXPECT_EQ(config.task.kind, TaskKind::kScore);
  EXPECT_EQ(config.task.max_length, 128);
  EXPECT_TRUE(config.task.normalize);
  EXPECT_EQ(config.task.top_k, 5);
  EXPECT_EQ(config.batching.max_batch_size, 7);
  EXPECT_EQ(config.batching.max_tokens, 4096);
  EXPECT_EQ(config.batching.window, 100);
  EXPECT_EQ(config.batching.pad_multiple, 1);
  EXPECT_EQ(config.io.max_line_bytes, 2 << 20);
  EXPECT_EQ(config.logging.level, "debug");
  EXPECT_DOUBLE_EQ(config.logging.progress_interval_s, 0.5);
}

TEST_F(ConfigTest, CrossEncoderKeysMovedToTheFamilyAreRefusedWithTheirNewName) {
  for (const std::string key : {"long_passages", "chunk_overlap", "max_passage_chars"}) {
    const std::string message = error_of(config_text("  " + key + ": 1\n"));
    EXPECT_NE(message.find("job.yaml:5 (task." + key +
                           "): this is now a cross-encoder option: "
                           "write it as model.options." +
                           key),
              std::string::npos)
        << message;
  }
  const std::string message = error_of(config_text(), {"task.long_passages=chunk_max"});
  EXPECT_NE(message.find("--set task.long_passages: this is now a cross-encoder option"),
            std::string::npos)
      << message;
  // Family keys pass through the general config unread: the family reads them.
  EXPECT_EQ(error_of(config_text(), {"model.options.long_passages=chunk_max"}), "");
}

TEST_F(ConfigTest, Int8LinearLayersNeedTheOneDnnGraph) {
  const std::string model = "model:\n  path: bundle\n  quantize: int8\n";
  const std::string rest =
      "task:\n  kind: rerank\ninput:\n  path: in.jsonl\noutput:\n  path: o.jsonl\n";
  EXPECT_EQ(parse_config(model + rest, file()).model.quantize, "int8");
  EXPECT_EQ(parse_config(config_text(), file()).model.quantize, "none");
  const std::string message = error_of(model + "  graph: plain\n" + rest);
  EXPECT_NE(message.find(file() + ":3 (model.quantize): quantize int8 needs graph: onednn"),
            std::string::npos)
      << message;
  EXPECT_NE(error_of(config_text(), {"model.quantize=int4"}).find("int4"), std::string::npos);
}

TEST_F(ConfigTest, UnknownKeyNamesFileLineAndKey) {
  const std::string message = error_of(config_text("  topk: 3\n"));
  EXPECT_NE(message.find(file() + ":5 (task.topk)"), std::string::npos) << message;
  EXPECT_NE(message.find("unknown key 'topk'"), std::string::npos) << message;
  EXPECT_NE(message.find("top_k"), std::string::npos) << "lists the known keys: " << message;
}

TEST_F(ConfigTest, UnknownSectionIsRefused) {
  const std::string message = error_of(config_text() + "extras:\n  a: 1\n");
  EXPECT_NE(message.find("unknown key 'extras'"), std::string::npos) << message;
  EXPECT_NE(message.find(":9"), std::string::npos) << message;
}

TEST_F(ConfigTest, WrongTypeNamesLineAndKey) {
  const std::string message = error_of(config_text("  top_k: many\n"));
  EXPECT_NE(message.find(file() + ":5 (task.top_k)"), std::string::npos) << message;
  EXPECT_NE(message.find("expected an integer, found 'many'"), std::string::npos) << message;
  EXPECT_NE(error_of(config_text("  normalize: maybe\n")).find("expected true or false"),
            std::string::npos);
  EXPECT_NE(error_of(config_text("  max_length: [1, 2]\n")).find("found a list"),
            std::string::npos);
}

TEST_F(ConfigTest, OutOfRangeValuesAreRefused) {
  std::string message = error_of(config_text() + "batching:\n  max_batch_size: 0\n");
  EXPECT_NE(message.find(":10 (batching.max_batch_size)"), std::string::npos) << message;
  EXPECT_NE(message.find("out of range"), std::string::npos) << message;
  message = error_of(config_text("  max_length: 8\n"));
  EXPECT_NE(message.find("task.max_length"), std::string::npos) << message;
  EXPECT_NE(error_of(config_text() + "logging:\n  progress_interval_s: -1\n").find("out of range"),
            std::string::npos);
}

TEST_F(ConfigTest, BadChoicesListTheAllowedValues) {
  const std::string message = error_of(config_text() + "logging:\n  level: loud\n");
  EXPECT_NE(message.find("'loud' is not one of: trace, debug, info, warn, error, off"),
            std::string::npos)
      << message;
  std::string text = config_text();
  text.insert(text.find("task:"), "  device: gpu0\n");
  EXPECT_NE(error_of(text).find("'gpu0' is not a device"), std::string::npos) << error_of(text);
}

TEST_F(ConfigTest, MissingRequiredKeysAndFiles) {
  std::string message = error_of("model:\n  path: bundle\ninput:\n  path: in.jsonl\n");
  EXPECT_NE(message.find("(task.kind): required key is missing"), std::string::npos) << message;
  message = error_of("model:\n  path: nowhere\ntask:\n  kind: rerank\n");
  EXPECT_NE(message.find(file() + ":2 (model.path)"), std::string::npos) << message;
  EXPECT_NE(message.find("does not exist"), std::string::npos) << message;
  message = error_of(config_text().replace(config_text().find("in.jsonl"), 8, "missing.jsonl"));
  EXPECT_NE(message.find("(input.path): input file"), std::string::npos) << message;
}

TEST_F(ConfigTest, MalformedYamlNamesTheLine) {
  const std::string message = error_of("model:\n  path: [unclosed\ntask: {\n");
  EXPECT_NE(message.find("not valid YAML"), std::string::npos) << message;
  EXPECT_NE(message.find(file() + ":"), std::string::npos) << message;
}

TEST_F(ConfigTest, SetOverridesAnyKey) {
  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir_.root());
  Config config = parse_config(config_text(), file(),
                               {"task.top_k=3", "task.normalize=true",
                                "output.path=elsewhere.jsonl", "batching.max_tokens=2048"});
  std::filesystem::current_path(cwd);
  EXPECT_EQ(config.task.top_k, 3);
  EXPECT_TRUE(config.task.normalize);
  EXPECT_EQ(config.batching.max_tokens, 2048);
  // A --set path is relative to the working directory, not to the config file.
  EXPECT_EQ(config.io.output_path, "elsewhere.jsonl");
}

TEST_F(ConfigTest, SetErrorsNameTheOverride) {
  std::string message = error_of(config_text(), {"task.top_k=-1"});
  EXPECT_NE(message.find("--set task.top_k"), std::string::npos) << message;
  message = error_of(config_text(), {"task.bogus=1"});
  EXPECT_NE(message.find("--set task.bogus: unknown key 'bogus'"), std::string::npos) << message;
  message = error_of(config_text(), {"no_equals_sign"});
  EXPECT_NE(message.find("expected key.path=value"), std::string::npos) << message;
}

TEST_F(ConfigTest, MemorySection) {
  Config config = parse_config(config_text() +
                                   "memory:\n  limit: 2GiB\n  budget: 512MiB\n"
                                   "  empty_cache: when_unused_above\n"
                                   "  empty_cache_above: 1MB\n",
                               file());
  EXPECT_EQ(config.memory.limit, 2LL << 30);
  EXPECT_EQ(config.memory.budget, 512LL << 20);
  EXPECT_EQ(config.memory.budget_fraction, 0);
  EXPECT_EQ(config.memory.empty_cache, EmptyCache::kWhenUnusedAbove);
  EXPECT_EQ(config.memory.empty_cache_above, 1000000);
  EXPECT_FALSE(config.memory.warmup);
  config = parse_config(config_text() + "memory:\n  budget: 0.8\n  empty_cache: after_request\n",
                        file());
  EXPECT_DOUBLE_EQ(config.memory.budget_fraction, 0.8);
  EXPECT_EQ(config.memory.budget, 0);
  EXPECT_EQ(config.memory.empty_cache, EmptyCache::kAfterRequest);
  config = parse_config(config_text(), file());
  EXPECT_EQ(config.memory.limit, 0);
  EXPECT_EQ(config.memory.empty_cache, EmptyCache::kNever);
  EXPECT_NE(error_of(config_text() + "memory:\n  limit: lots\n").find("(memory.limit)"),
            std::string::npos);
  EXPECT_NE(error_of(config_text() + "memory:\n  empty_cache: sometimes\n").find("not one of"),
            std::string::npos);
}

TEST(ByteCountTest, ParsesUnits) {
  EXPECT_EQ(parse_byte_count("1024"), 1024);
  EXPECT_EQ(parse_byte_count("2KiB"), 2048);
  EXPECT_EQ(parse_byte_count("1.5GiB"), 1610612736);
  EXPECT_EQ(parse_byte_count("512MB"), 512000000);
  EXPECT_EQ(parse_byte_count("3 MiB"), 3 << 20);
  EXPECT_FALSE(parse_byte_count("12 parsecs"));
  EXPECT_FALSE(parse_byte_count("lots"));
  EXPECT_FALSE(parse_byte_count("-5"));
}

}  // namespace
}  // namespace engine
