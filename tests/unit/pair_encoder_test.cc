// Pair building of the cross-encoder family on exact boundaries, with a tokenizer that gives one
// id per character, so lengths are easy to count.
#include "models/cross_encoder/pair_encoder.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "engine/common/error.h"
#include "engine/config/config.h"
#include "tests/support/test_support.h"

namespace models::cross_encoder {
namespace {

using engine::Encoding;

// "<s> a </s></s> b </s>" with <s>=0, </s>=2; every character of a text is the id 100 + its
// position in the alphabet, so a chunk is recognisable by its first id.
class CharTokenizer : public engine::Tokenizer {
 public:
  Encoding build_single(const std::vector<int64_t>& ids) const override {
    Encoding encoding;
    encoding.ids = {0};
    encoding.ids.insert(encoding.ids.end(), ids.begin(), ids.end());
    encoding.ids.push_back(2);
    encoding.type_ids.assign(encoding.ids.size(), 0);
    return encoding;
  }
  Encoding build_pair(const std::vector<int64_t>& first,
                      const std::vector<int64_t>& second) const override {
    Encoding encoding = build_single(first);
    encoding.ids.push_back(2);
    encoding.ids.insert(encoding.ids.end(), second.begin(), second.end());
    encoding.ids.push_back(2);
    encoding.type_ids.assign(encoding.ids.size(), 0);
    return encoding;
  }
  size_t special_token_count(bool pair) const override { return pair ? 4 : 2; }
  std::string id_to_piece(int64_t id) const override { return std::to_string(id); }
  int64_t vocab_size() const override { return 100000; }
  const engine::SpecialTokenIds& special_tokens() const override { return special_; }

 protected:
  std::vector<int64_t> encode_all(std::string_view text) const override {
    std::vector<int64_t> ids;
    for (size_t i = 0; i < text.size(); ++i) ids.push_back(1000 + static_cast<int64_t>(i));
    return ids;
  }

 private:
  engine::SpecialTokenIds special_{0, 2, 1, 3, -1};
};

class PairEncoderTest : public ::testing::Test {
 protected:
  std::vector<Encoding> encode(int max_length, const CrossEncoderOptions& options,
                               size_t query_chars, size_t passage_chars,
                               const std::string& truncation = "query_three_quarters") {
    PairEncoder encoder(tokenizer_, max_length, options, truncation);
    return encoder.encode(std::string(query_chars, 'q'), std::string(passage_chars, 'p'));
  }

  CharTokenizer tokenizer_;
};

TEST_F(PairEncoderTest, TruncateCapsTheQueryAtThreeQuartersAndFillsTheRest) {
  const CrossEncoderOptions options;
  auto sequences = encode(64, options, 100, 100);
  ASSERT_EQ(sequences.size(), 1u);
  EXPECT_EQ(sequences[0].size(), 64u);  // 48 query + 12 passage + 4 special
  EXPECT_EQ(sequences[0].ids[48], 1047) << "the query's 48th character is the last kept";
  EXPECT_EQ(sequences[0].ids[49], 2);
  sequences = encode(64, options, 10, 20);
  EXPECT_EQ(sequences[0].size(), 34u) << "short pairs are not padded";
}

TEST_F(PairEncoderTest, ChunkMaxCutsOverlappingWindows) {
  CrossEncoderOptions options;
  options.long_passages = LongPassages::kChunkMax;
  options.chunk_overlap = 80;
  // Query of 16: window = 200 - 16 - 4 = 180, overlap = min(80, 180 / 4) = 45.
  EXPECT_EQ(encode(200, options, 16, 180).size(), 1u) << "a passage that fits is one sequence";
  const auto sequences = encode(200, options, 16, 300);
  ASSERT_EQ(sequences.size(), 2u);
  // Chunks start at 0 and 180 - 45 = 135; the second ends with the passage.
  EXPECT_EQ(sequences[0].ids[16 + 3], 1000);
  EXPECT_EQ(sequences[0].size(), 200u);
  EXPECT_EQ(sequences[1].ids[16 + 3], 1135);
  EXPECT_EQ(sequences[1].size(), 16u + 4 + 165);
  EXPECT_EQ(encode(200, options, 16, 450).size(), 3u) << "windows 0, 135 and 270 end at 450";
  EXPECT_EQ(encode(200, options, 16, 451).size(), 4u);
}

TEST_F(PairEncoderTest, ChunkMaxRefusesAQueryThatLeavesNoWindow) {
  CrossEncoderOptions options;
  options.long_passages = LongPassages::kChunkMax;
  // Window 101, overlap 25: chunks start at 0, 76, ..., 456.
  EXPECT_EQ(encode(128, options, 23, 500).size(), 7u) << "window 101 is enough";
  try {
    encode(128, options, 24, 500);
    FAIL() << "a window of 100 must be refused";
  } catch (const engine::RecordError& error) {
    EXPECT_NE(std::string(error.what()).find("leaving 100 for passage chunks"), std::string::npos)
        << error.what();
  }
}

TEST_F(PairEncoderTest, ChunkMaxCutsPassagesToMaxPassageChars) {
  CrossEncoderOptions options;
  options.long_passages = LongPassages::kChunkMax;
  options.max_passage_chars = 180;
  EXPECT_EQ(encode(200, options, 16, 100000).size(), 1u);
}

// The family reads its own keys from model.options, typed and checked, and records them all.
TEST(CrossEncoderOptionsTest, AreReadFromModelOptionsCheckedAndRecorded) {
  engine::testing::TempDir dir;
  std::filesystem::create_directories(dir.path("bundle"));
  engine::testing::write_file(dir.path("in.jsonl"), "{}\n");
  const auto config_with = [&](const std::string& options) {
    return engine::parse_config("model:\n  path: bundle\n  options:\n" + options +
                                    "task:\n  kind: rerank\ninput:\n  path: in.jsonl\n"
                                    "output:\n  path: out.jsonl\n",
                                dir.path("job.yaml"));
  };
  engine::Manifest manifest;
  manifest.architecture = {{"num_labels", 2}};
  const auto read = [&](const engine::Config& config) {
    return read_options({*config.model.family_options, manifest, config.task});
  };
  const engine::Config config = config_with(
      "    label: 1\n    long_passages: chunk_max\n    chunk_overlap: 40\n"
      "    max_passage_chars: 1000\n    query_instruction: 'q: '\n");
  const auto options = read(config);
  const auto& typed = dynamic_cast<const CrossEncoderOptions&>(*options);
  EXPECT_EQ(typed.label, 1);
  EXPECT_EQ(typed.long_passages, LongPassages::kChunkMax);
  EXPECT_EQ(typed.chunk_overlap, 40);
  EXPECT_EQ(typed.max_passage_chars, 1000);
  EXPECT_EQ(typed.query_instruction.apply("x"), "q: x");
  const nlohmann::json settings = options->settings();
  EXPECT_EQ(settings.at("long_passages"), "chunk_max");
  EXPECT_EQ(settings.at("activation"), "auto") << "defaults are recorded too";
  EXPECT_EQ(settings.at("query_instruction").at("instruction"), "q: ");
  EXPECT_TRUE(settings.at("passage_instruction").at("instruction").is_null());

  const auto error_of = [&](const std::string& options_text) -> std::string {
    try {
      read(config_with(options_text));
    } catch (const engine::ConfigError& error) {
      return error.what();
    }
    return "";
  };
  EXPECT_NE(error_of("    label: 2\n")
                .find("job.yaml:4 (model.options.label): value 2 is out of "
                      "range; expected 0 to 1"),
            std::string::npos)
      << error_of("    label: 2\n");
  EXPECT_NE(error_of("    long_passages: chunks\n")
                .find("'chunks' is not one of: truncate, "
                      "chunk_max"),
            std::string::npos);
  const std::string unknown = error_of("    chunk_overlapp: 3\n");
  EXPECT_NE(unknown.find("(model.options.chunk_overlapp): unknown key 'chunk_overlapp'"),
            std::string::npos)
      << unknown;
}

using Lengths = std::pair<size_t, size_t>;

TEST(LongestFirstTest, KeepsWhatTransformersKeeps) {
  EXPECT_EQ(longest_first_lengths(5, 6, 21), Lengths(5, 6));
  // transformers at max_length 24 (21 without [CLS] and two [SEP]): 11 + 15 -> 11 + 10.
  EXPECT_EQ(longest_first_lengths(11, 15, 21), Lengths(11, 10));
  EXPECT_EQ(longest_first_lengths(15, 11, 21), Lengths(11, 10));
  EXPECT_EQ(longest_first_lengths(1000, 500, 21), Lengths(11, 10));
  EXPECT_EQ(longest_first_lengths(500, 1000, 21), Lengths(11, 10));
  EXPECT_EQ(longest_first_lengths(30, 4, 21), Lengths(17, 4));
  EXPECT_EQ(longest_first_lengths(4, 30, 21), Lengths(4, 17));
  EXPECT_EQ(longest_first_lengths(40, 0, 21), Lengths(21, 0));
  EXPECT_EQ(longest_first_lengths(12, 12, 21), Lengths(11, 10));
}

TEST_F(PairEncoderTest, LongestFirstBuildsBertPairs) {
  const auto sequences = encode(24, CrossEncoderOptions(), 15, 11, "longest_first");
  ASSERT_EQ(sequences.size(), 1u);
  EXPECT_EQ(sequences[0].size(), 24u);
  // This tokenizer adds 4 special tokens, so 20 are shared: 10 of the query's 15, 10 of 11.
  EXPECT_EQ(sequences[0].ids[10], 1009);
  EXPECT_EQ(sequences[0].ids[11], 2);
  EXPECT_EQ(sequences[0].ids[22], 1009);
}

}  // namespace
}  // namespace models::cross_encoder
