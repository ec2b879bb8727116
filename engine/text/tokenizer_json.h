// A Hugging Face tokenizer.json read by the engine: the ids of the `tokenizers` library (0.22)
// for the same file, special tokens written in the text read as text (encode_special_tokens).
// The pipeline is tokenizers' own: added tokens split out, normalizer, pre-tokenizer, model
// (WordPiece, BPE, Unigram, WordLevel) and post-processor, each built from its JSON object
// (hf_normalizers.h, hf_pre_tokenizers.h, hf_model.h, hf_post_processors.h). See
// docs/tokenizers.md for what is supported and the options.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/text/tokenizer.h"

namespace engine {
namespace hf {
class AddedVocabulary;
class Model;
class Normalizer;
class PostProcessor;
class PreTokenizer;
}  // namespace hf

class TokenizerJson : public Tokenizer {
 public:
  // `options` names special tokens as the checkpoint's tokenizer_config.json does: pad_token,
  // unk_token, bos_token, eos_token, mask_token, cls_token, sep_token (strings, or objects with
  // a "content"). Throws ConfigError for an unreadable or malformed file, an unsupported
  // component, or an unknown option or token.
  TokenizerJson(const std::string& file, const nlohmann::json& options);
  ~TokenizerJson() override;

  Encoding build_single(const std::vector<int64_t>& ids) const override;
  Encoding build_pair(const std::vector<int64_t>& first,
                      const std::vector<int64_t>& second) const override;
  size_t special_token_count(bool pair) const override {
    return pair ? pair_specials_ : single_specials_;
  }
  std::string id_to_piece(int64_t id) const override;
  // One past the largest id of the model's vocabulary and the added tokens.
  int64_t vocab_size() const override { return vocab_size_; }
  const SpecialTokenIds& special_tokens() const override { return special_; }

  // The id of an added token or of a token of the model's vocabulary.
  std::optional<int64_t> token_to_id(std::string_view token) const;

 protected:
  std::vector<int64_t> encode_all(std::string_view text) const override;

 private:
  void read_added_tokens(const nlohmann::json& root, const std::string& file);
  void resolve_special_tokens(const nlohmann::json& root, const nlohmann::json& options,
                              const std::string& file);

  std::unique_ptr<hf::Normalizer> normalizer_;
  std::unique_ptr<hf::PreTokenizer> pre_tokenizer_;
  std::unique_ptr<hf::Model> model_;
  std::unique_ptr<hf::PostProcessor> post_processor_;
  std::unique_ptr<hf::AddedVocabulary> added_;
  std::unordered_map<std::string, int64_t> added_ids_;
  std::unordered_map<int64_t, std::string> added_contents_;
  SpecialTokenIds special_;
  size_t single_specials_ = 0;
  size_t pair_specials_ = 0;
  int64_t vocab_size_ = 0;
};

}  // namespace engine
