// The tokenizer interface: text to ids without special tokens, and the model's own templates
// that add them. Implementations: XLM-R sentencepiece (xlmr_sentencepiece_tokenizer.h).
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace engine {

// One model input sequence, special tokens included.
struct Encoding {
  std::vector<int64_t> ids;
  std::vector<int64_t> type_ids;
  // How many leading ids this sequence shares with the other sequences of its record (an LLM
  // reranker's template prefix, query and separator), for a model that runs them once; 0: none.
  size_t shared_prefix = 0;
  size_t size() const { return ids.size(); }
};

struct SpecialTokenIds {
  int64_t bos = -1;
  int64_t eos = -1;
  int64_t pad = -1;
  int64_t unk = -1;
  int64_t mask = -1;
};

class Tokenizer {
 public:
  static constexpr size_t kUnlimited = std::numeric_limits<size_t>::max();

  virtual ~Tokenizer() = default;

  // Ids of `text` without special tokens, the first `max_tokens` of them. A text far longer than
  // needed is encoded in growing prefixes cut at whitespace, so a 10 MB passage costs about as
  // much as the tokens kept.
  std::vector<int64_t> encode(std::string_view text, size_t max_tokens = kUnlimited) const;

  // The single-sequence and pair templates with special tokens, as the model was trained.
  virtual Encoding build_single(const std::vector<int64_t>& ids) const = 0;
  virtual Encoding build_pair(const std::vector<int64_t>& first,
                              const std::vector<int64_t>& second) const = 0;
  virtual size_t special_token_count(bool pair) const = 0;

  virtual std::string id_to_piece(int64_t id) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual const SpecialTokenIds& special_tokens() const = 0;

 protected:
  // Every id of the whole text, without special tokens.
  virtual std::vector<int64_t> encode_all(std::string_view text) const = 0;
};

// Creates the tokenizer that the manifest's "tokenizer" object describes: its "kind"
// (xlmr_sentencepiece, wordpiece) and options, reading `file`. Throws ConfigError for an unknown
// kind, a bad option or an unreadable file.
std::unique_ptr<Tokenizer> make_tokenizer(const std::string& kind, const std::string& file,
                                          const nlohmann::json& options);

}  // namespace engine
