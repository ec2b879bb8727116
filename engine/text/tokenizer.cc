#include "engine/text/tokenizer.h"

#include <algorithm>

#include "engine/common/error.h"
#include "engine/text/gemma_sentencepiece_tokenizer.h"
#include "engine/text/tokenizer_json.h"
#include "engine/text/wordpiece_tokenizer.h"
#include "engine/text/xlmr_sentencepiece_tokenizer.h"

namespace engine {
namespace {

// Below this size a text is encoded whole.
constexpr size_t kWholeTextBytes = 16 * 1024;
// Tokens encoded beyond those kept, so that the piece at the cut cannot change the kept ones.
constexpr size_t kMarginTokens = 16;

bool is_ascii_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// The end of a prefix of about `want` bytes: just after the last whitespace in its second half,
// else at the last UTF-8 character boundary.
size_t prefix_cut(std::string_view text, size_t want) {
  for (size_t i = want; i > want / 2; --i) {
    if (is_ascii_space(text[i - 1])) return i;
  }
  size_t cut = want;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return cut;
}

}  // namespace

std::vector<int64_t> Tokenizer::encode(std::string_view text, size_t max_tokens) const {
  if (max_tokens != kUnlimited && text.size() > kWholeTextBytes) {
    size_t want = std::max(kWholeTextBytes, (max_tokens + kMarginTokens) * 8);
    while (want < text.size()) {
      std::vector<int64_t> ids = encode_all(text.substr(0, prefix_cut(text, want)));
      if (ids.size() >= max_tokens + kMarginTokens) {
        ids.resize(max_tokens);
        return ids;
      }
      want *= 2;
    }
  }
  std::vector<int64_t> ids = encode_all(text);
  if (ids.size() > max_tokens) ids.resize(max_tokens);
  return ids;
}

std::unique_ptr<Tokenizer> make_tokenizer(const std::string& kind, const std::string& file,
                                          const nlohmann::json& options) {
  if (kind == "xlmr_sentencepiece") return std::make_unique<XlmrSentencePieceTokenizer>(file);
  if (kind == "wordpiece") {
    WordPieceOptions wordpiece;
    try {
      wordpiece.lowercase = options.value("lowercase", true);
      const auto strip = options.value("strip_accents", nlohmann::json());
      wordpiece.strip_accents = strip.is_null() ? -1 : strip.get<bool>() ? 1 : 0;
      wordpiece.tokenize_chinese_chars = options.value("tokenize_chinese_chars", true);
    } catch (const nlohmann::json::exception& error) {
      throw ConfigError(
          fmt::format("WordPiece options of '{}' are malformed: {}", file, error.what()));
    }
    return std::make_unique<WordPieceTokenizer>(file, wordpiece);
  }
  if (kind == "gemma_sentencepiece") {
    const auto add_bos = options.value("add_bos", nlohmann::json(true));
    check<ConfigError>(add_bos.is_boolean(), "the tokenizer's add_bos must be true or false");
    return std::make_unique<GemmaSentencePieceTokenizer>(file, add_bos.get<bool>());
  }
  if (kind == "tokenizer_json") {
    // The manifest's tokenizer object: kind and file are the engine's, the rest the tokenizer's.
    nlohmann::json own = options;
    if (own.is_object()) {
      own.erase("kind");
      own.erase("file");
    }
    return std::make_unique<TokenizerJson>(file, own);
  }
  throw ConfigError(
      fmt::format("tokenizer kind '{}' is not supported by this engine; supported: "
                  "xlmr_sentencepiece, wordpiece, gemma_sentencepiece, tokenizer_json",
                  kind));
}

}  // namespace engine
