// The tokenizer.json reader against Hugging Face tokenizers 0.22: the ids it gives for every
// text of tests/reference/tokenizer_json_reference.py on each tokenizer trained or converted
// there, with and without special tokens, for pairs, its pieces, vocabulary and special tokens,
// and tokenizers' Unicode classes code point by code point. The fixtures are the suite's
// tokenizer_json/ (or $ENGINE_TOKENIZER_JSON_FIXTURES). Error messages and long texts are tested
// on files made here.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/common/error.h"
#include "engine/text/hf_precompiled_charsmap.h"
#include "engine/text/hf_regex.h"
#include "engine/text/hf_unicode.h"
#include "engine/text/tokenizer.h"
#include "tests/support/test_support.h"

namespace {

namespace fs = std::filesystem;
using engine::Tokenizer;
using nlohmann::json;

// $ENGINE_TOKENIZER_JSON_FIXTURES, else tokenizer_json/ among the suite's fixtures.
fs::path fixture_dir() {
  const char* dir = std::getenv("ENGINE_TOKENIZER_JSON_FIXTURES");
  return dir ? fs::path(dir) : fs::path(engine::testing::fixture_path("tokenizer_json"));
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return json::parse(text.str());
}

// The reference file, read once.
const json& reference() {
  static const json loaded = [] {
    const fs::path dir = fixture_dir();
    if (dir.empty() || !fs::exists(dir / "reference.json")) return json();
    return read_json(dir / "reference.json");
  }();
  return loaded;
}

std::string text_of(const json& entry) {
  if (entry.contains("text")) return entry["text"].get<std::string>();
  // Bytes that are not UTF-8, in base64.
  return engine::hf::decode_base64(entry["base64"].get<std::string>());
}

class TokenizerJsonParity : public ::testing::Test {
 protected:
  void SetUp() override {
    if (reference().is_null()) {
      FAIL() << "no reference.json in '" << fixture_dir().string()
             << "'); make it with tests/reference/tokenizer_json_reference.py --out DIR";
    }
    for (const json& entry : reference()["texts"]) texts_.push_back(text_of(entry));
  }

  std::unique_ptr<Tokenizer> load(const json& expected) const {
    return engine::make_tokenizer("tokenizer_json",
                                  (fixture_dir() / expected["file"].get<std::string>()).string(),
                                  expected["options"]);
  }

  static std::vector<int64_t> ids(const json& list) { return list.get<std::vector<int64_t>>(); }

  std::vector<std::string> texts_;
};

TEST_F(TokenizerJsonParity, EveryTextGivesTokenizersIds) {
  for (const json& expected : reference()["tokenizers"]) {
    const std::string name = expected["name"];
    const auto tokenizer = load(expected);
    size_t matched = 0;
    for (size_t i = 0; i < texts_.size(); ++i) {
      const std::vector<int64_t> got = tokenizer->encode(texts_[i]);
      if (got == ids(expected["singles"][i]["ids"])) {
        ++matched;
      } else {
        ADD_FAILURE() << name << ": text " << i << " '" << texts_[i].substr(0, 80) << "' got "
                      << json(got).dump().substr(0, 300) << " expected "
                      << expected["singles"][i]["ids"].dump().substr(0, 300);
      }
    }
    EXPECT_EQ(matched, texts_.size()) << name;
    std::cout << name << ": " << matched << "/" << texts_.size() << " texts\n";
  }
}

TEST_F(TokenizerJsonParity, SinglesAndPairsGetTokenizersSpecialTokensAndTypes) {
  for (const json& expected : reference()["tokenizers"]) {
    const std::string name = expected["name"];
    const auto tokenizer = load(expected);
    size_t matched = 0;
    for (size_t i = 0; i < texts_.size(); ++i) {
      const engine::Encoding single = tokenizer->build_single(tokenizer->encode(texts_[i]));
      const json& want = expected["singles"][i];
      const bool same =
          single.ids == ids(want["special_ids"]) && single.type_ids == ids(want["type_ids"]);
      matched += same;
      EXPECT_TRUE(same) << name << ": single " << i;
    }
    const json& pairs = reference()["pairs"];
    for (size_t k = 0; k < pairs.size(); ++k) {
      const engine::Encoding pair = tokenizer->build_pair(tokenizer->encode(texts_[pairs[k][0]]),
                                                          tokenizer->encode(texts_[pairs[k][1]]));
      const json& want = expected["pairs"][k];
      const bool same = pair.ids == ids(want["ids"]) && pair.type_ids == ids(want["type_ids"]);
      matched += same;
      EXPECT_TRUE(same) << name << ": pair " << k << " got " << json(pair.ids).dump().substr(0, 200)
                        << " types " << json(pair.type_ids).dump().substr(0, 200) << " expected "
                        << want.dump().substr(0, 400);
    }
    EXPECT_EQ(matched, texts_.size() + pairs.size()) << name;
    std::cout << name << ": " << matched << "/" << texts_.size() + pairs.size()
              << " singles and pairs with special tokens\n";
  }
}

TEST_F(TokenizerJsonParity, PiecesVocabularyAndSpecialTokensAreTokenizers) {
  for (const json& expected : reference()["tokenizers"]) {
    const std::string name = expected["name"];
    const auto tokenizer = load(expected);
    EXPECT_EQ(tokenizer->vocab_size(), expected["vocab_size"].get<int64_t>()) << name;
    EXPECT_EQ(tokenizer->special_token_count(false), expected["special_token_count"][0]) << name;
    EXPECT_EQ(tokenizer->special_token_count(true), expected["special_token_count"][1]) << name;
    const engine::SpecialTokenIds& special = tokenizer->special_tokens();
    const json& want = expected["special_ids"];
    EXPECT_EQ(special.pad, want["pad"].get<int64_t>()) << name << " pad";
    EXPECT_EQ(special.unk, want["unk"].get<int64_t>()) << name << " unk";
    EXPECT_EQ(special.bos, want["bos"].get<int64_t>()) << name << " bos";
    EXPECT_EQ(special.eos, want["eos"].get<int64_t>()) << name << " eos";
    EXPECT_EQ(special.mask, want["mask"].get<int64_t>()) << name << " mask";
    size_t pieces = 0, matched = 0;
    for (const json& single : expected["singles"]) {
      for (size_t k = 0; k < single["ids"].size(); ++k) {
        ++pieces;
        matched += tokenizer->id_to_piece(single["ids"][k].get<int64_t>()) == single["pieces"][k];
      }
    }
    EXPECT_EQ(matched, pieces) << name;
  }
}

// tokenizers' character classes and normal forms, from its crates' Unicode versions.
TEST(TokenizerJsonUnicode, ClassesAndNormalFormsAreTokenizersForEveryCodePoint) {
  const fs::path file = fixture_dir() / "unicode.json";
  ASSERT_TRUE(!fixture_dir().empty() && fs::exists(file)) << "no " << file;
  const json properties = read_json(file);
  namespace hf = engine::hf;
  const std::map<std::string, bool (*)(char32_t)> classes = {
      {"bert_removed", hf::is_bert_removed},
      {"bert_whitespace", hf::is_bert_whitespace},
      {"whitespace", hf::is_whitespace},
      {"bert_punctuation", hf::is_bert_punctuation},
      {"numeric", hf::is_numeric},
      {"word", hf::is_word_character},
      {"combining_mark", hf::is_combining_mark},
      {"nonspacing_mark", hf::is_nonspacing_mark}};
  for (const auto& [name, has] : classes) {
    std::vector<bool> want(0x110000, false);
    for (const json& range : properties["sets"][name]) {
      for (uint32_t c = range[0]; c <= range[1].get<uint32_t>(); ++c) want[c] = true;
    }
    if (name == "bert_whitespace") want[' '] = true;  // unchanged by the probe, so not listed
    size_t wrong = 0;
    for (char32_t c = 1; c < 0x110000; ++c) {
      if (c < 0xD800 || c > 0xDFFF) wrong += has(c) != want[c];
    }
    EXPECT_EQ(wrong, 0u) << name;
  }
  // The regex classes, with the characters of Unicode 15 and 16 that Debian's Oniguruma lacks.
  const std::map<std::string, std::string> patterns = {
      {"L", R"(\p{L})"},   {"N", R"(\p{N})"}, {"M", R"(\p{M})"}, {"P", R"(\p{P})"},
      {"Lu", R"(\p{Lu})"}, {"w", R"(\w)"},    {"d", R"(\d)"},    {"s", R"(\s)"}};
  for (const auto& [name, pattern] : patterns) {
    const hf::Regex regex(pattern);
    std::vector<bool> want(0x110000, false);
    for (const json& range : properties["regex_classes"][name]) {
      for (uint32_t c = range[0]; c <= range[1].get<uint32_t>(); ++c) want[c] = true;
    }
    size_t wrong = 0;
    std::string character;
    for (char32_t c = 1; c < 0x110000; ++c) {
      if (c >= 0xD800 && c <= 0xDFFF) continue;
      character.clear();
      hf::append_utf8(c, character);
      wrong += regex.find_all(character).empty() == want[c];
    }
    EXPECT_EQ(wrong, 0u) << pattern;
  }
  const std::map<std::string, hf::NormalForm> forms = {{"NFC", hf::NormalForm::kNfc},
                                                       {"NFD", hf::NormalForm::kNfd},
                                                       {"NFKC", hf::NormalForm::kNfkc},
                                                       {"NFKD", hf::NormalForm::kNfkd}};
  for (const std::string name : {"NFC", "NFD", "NFKC", "NFKD", "lowercase"}) {
    const json& changed = properties["maps"][name];
    size_t wrong = 0;
    for (char32_t c = 1; c < 0x110000; ++c) {
      if (c >= 0xD800 && c <= 0xDFFF) continue;
      const auto found = changed.find(std::to_string(c));
      std::string want;
      if (found == changed.end()) {
        hf::append_utf8(c, want);
      } else {
        want = found->get<std::string>();
      }
      std::u32string got;
      if (name == "lowercase") {
        hf::append_lowercase(c, got);
      } else {
        got = hf::normalize(std::u32string(1, c), forms.at(name));
      }
      wrong += hf::encode_utf8(got) != want;
    }
    EXPECT_EQ(wrong, 0u) << name;
  }
}

// --- files made here --------------------------------------------------------------------------

class TokenizerJsonFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("tokenizer_json_test_" +
            std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& text) const {
    const fs::path path = dir_ / "tokenizer.json";
    std::ofstream(path) << text;
    return path.string();
  }

  // A small WordLevel tokenizer.json with `normalizer` and `pre_tokenizer` spliced in.
  std::string word_level(const std::string& normalizer, const std::string& pre_tokenizer) const {
    return write(R"({"version": "1.0", "added_tokens": [], "normalizer": )" + normalizer +
                 R"(, "pre_tokenizer": )" + pre_tokenizer +
                 R"(, "post_processor": null, "model": {"type": "WordLevel",
                 "vocab": {"<unk>": 0, "a": 1, "b": 2}, "unk_token": "<unk>"}})");
  }

  // The ConfigError message of loading `file` with `options`.
  static std::string error_of(const std::string& file, const json& options = json::object()) {
    try {
      engine::make_tokenizer("tokenizer_json", file, options);
    } catch (const engine::ConfigError& error) {
      return error.what();
    }
    return "(no error)";
  }

  fs::path dir_;
};

TEST_F(TokenizerJsonFiles, AnUnknownComponentTypeNamesTheFilePathAndSupportedTypes) {
  const std::string file = word_level(
      R"({"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Frobnicate"}]})", "null");
  const std::string message = error_of(file);
  EXPECT_NE(message.find(file), std::string::npos) << message;
  EXPECT_NE(message.find("normalizer.normalizers[1]"), std::string::npos) << message;
  EXPECT_NE(message.find("normalizer type 'Frobnicate' is not supported"), std::string::npos)
      << message;
  EXPECT_NE(message.find("supported: BertNormalizer, NFC"), std::string::npos) << message;

  const std::string scripts = error_of(word_level("null", R"({"type": "UnicodeScripts"})"));
  EXPECT_NE(scripts.find("pre_tokenizer: pre-tokenizer type 'UnicodeScripts' is not supported"),
            std::string::npos)
      << scripts;
}

TEST_F(TokenizerJsonFiles, MalformedOrMissingFilesAreConfigErrors) {
  const std::string broken = write(R"({"model": {"type": "BPE", )");
  EXPECT_NE(error_of(broken).find("tokenizer.json '" + broken + "' is not valid JSON"),
            std::string::npos)
      << error_of(broken);
  const std::string missing = (dir_ / "absent.json").string();
  EXPECT_EQ(error_of(missing), "tokenizer.json '" + missing + "' cannot be read");
  const std::string no_model = write(R"({"normalizer": null})");
  EXPECT_EQ(error_of(no_model), "tokenizer.json '" + no_model + "' has no \"model\"");
  const std::string bad_merge =
      write(R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b c"]}})");
  EXPECT_EQ(error_of(bad_merge), "tokenizer.json '" + bad_merge +
                                     "': model.merges[0]: expected a merge \"left right\" with "
                                     "one space");
  const std::string bad_regex = word_level(
      "null", R"({"type": "Split", "pattern": {"Regex": "(a"}, "behavior": "Isolated"})");
  EXPECT_NE(error_of(bad_regex).find("pre_tokenizer.pattern: the regular expression '(a' does not "
                                     "compile"),
            std::string::npos)
      << error_of(bad_regex);
}

TEST_F(TokenizerJsonFiles, OptionsNameSpecialTokensAndUnknownOnesAreRefused) {
  const std::string file = word_level("null", R"({"type": "WhitespaceSplit"})");
  const auto tokenizer = engine::make_tokenizer(
      "tokenizer_json", file, json{{"pad_token", "b"}, {"unk_token", {{"content", "<unk>"}}}});
  EXPECT_EQ(tokenizer->special_tokens().pad, 2);
  EXPECT_EQ(tokenizer->special_tokens().unk, 0);
  EXPECT_EQ(tokenizer->special_tokens().bos, -1);
  EXPECT_EQ(tokenizer->encode("a b c a"), (std::vector<int64_t>{1, 2, 0, 1}));
  EXPECT_NE(error_of(file, json{{"padding_token", "a"}})
                .find("tokenizer option 'padding_token' "
                      "is not supported"),
            std::string::npos);
  EXPECT_NE(error_of(file, json{{"eos_token", "</s>"}}).find("eos_token '</s>' is not a token"),
            std::string::npos);
}

// A passage far longer than needed is encoded in prefixes; the ids kept are those of the whole.
TEST(TokenizerJsonLongTexts, PrefixEncodingEqualsWholeTextEncoding) {
  if (reference().is_null()) GTEST_SKIP() << "needs $ENGINE_TOKENIZER_JSON_FIXTURES";
  std::string passage;
  for (const json& entry : reference()["texts"]) {
    if (entry.contains("text") && entry["text"].get<std::string>().size() < 200) {
      passage += entry["text"].get<std::string>() + " ";
    }
  }
  std::string text;
  while (text.size() < 300000) text += passage;
  for (const json& expected : reference()["tokenizers"]) {
    const auto tokenizer = engine::make_tokenizer(
        "tokenizer_json", (fixture_dir() / expected["file"].get<std::string>()).string(),
        expected["options"]);
    const std::vector<int64_t> whole = tokenizer->encode(text);
    for (size_t keep : {size_t{1}, size_t{500}, size_t{4000}}) {
      std::vector<int64_t> want(whole.begin(), whole.begin() + static_cast<long>(keep));
      EXPECT_EQ(tokenizer->encode(text, keep), want) << expected["name"] << " keep " << keep;
    }
  }
}

// Threads share one tokenizer (its word caches and regexes) and get the ids of one thread.
TEST(TokenizerJsonLongTexts, ThreadsEncodingAtOnceGetTheSameIds) {
  if (reference().is_null()) GTEST_SKIP() << "needs $ENGINE_TOKENIZER_JSON_FIXTURES";
  std::vector<std::string> texts;
  for (const json& entry : reference()["texts"]) texts.push_back(text_of(entry));
  for (const char* name : {"bert_uncased.json", "llama3.json", "xlmr_converted.json"}) {
    const auto tokenizer =
        engine::make_tokenizer("tokenizer_json", (fixture_dir() / name).string(), json::object());
    std::vector<std::vector<int64_t>> alone;
    for (const std::string& text : texts) alone.push_back(tokenizer->encode(text));
    const auto fresh =
        engine::make_tokenizer("tokenizer_json", (fixture_dir() / name).string(), json::object());
    std::vector<size_t> mismatches(4, 0);
    std::vector<std::thread> threads;
    for (size_t t = 0; t < mismatches.size(); ++t) {
      threads.emplace_back([&, t] {
        for (int round = 0; round < 5; ++round) {
          for (size_t i = 0; i < texts.size(); ++i) {
            mismatches[t] += fresh->encode(texts[(i + t * 31) % texts.size()]) !=
                             alone[(i + t * 31) % texts.size()];
          }
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    for (size_t count : mismatches) EXPECT_EQ(count, 0u) << name;
  }
}

// One word of a million letters: BPE merges by rank with a queue, not pass after pass.
TEST(TokenizerJsonLongTexts, AMillionLetterWordIsNotQuadratic) {
  if (reference().is_null()) GTEST_SKIP() << "needs $ENGINE_TOKENIZER_JSON_FIXTURES";
  const std::string word(1000000, 'e');
  for (const char* name : {"gpt2_legacy_merges.json", "llama3.json", "xlmr_converted.json",
                           "bert_uncased.json", "mistral_bpe_byte_fallback.json"}) {
    const auto tokenizer =
        engine::make_tokenizer("tokenizer_json", (fixture_dir() / name).string(), json::object());
    const auto start = std::chrono::steady_clock::now();
    const std::vector<int64_t> ids = tokenizer->encode(word);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_FALSE(ids.empty()) << name;
    EXPECT_LT(seconds, 10.0) << name;
  }
}

}  // namespace
