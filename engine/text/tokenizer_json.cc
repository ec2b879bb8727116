#include "engine/text/tokenizer_json.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "engine/common/error.h"
#include "engine/text/hf_added_tokens.h"
#include "engine/text/hf_json.h"
#include "engine/text/hf_model.h"
#include "engine/text/hf_normalizers.h"
#include "engine/text/hf_post_processors.h"
#include "engine/text/hf_pre_tokenizers.h"
#include "engine/text/hf_unicode.h"

namespace engine {
namespace {

nlohmann::json read_json(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  check<ConfigError>(in.good(), "tokenizer.json '{}' cannot be read", file);
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    nlohmann::json root = nlohmann::json::parse(buffer.str());
    check<ConfigError>(root.is_object(), "tokenizer.json '{}' is not a JSON object", file);
    return root;
  } catch (const nlohmann::json::parse_error& error) {
    throw ConfigError(fmt::format("tokenizer.json '{}' is not valid JSON: {}", file, error.what()));
  }
}

hf::JsonSite member(const std::string& file, const nlohmann::json& root, const char* key) {
  static const nlohmann::json null_value;
  const auto found = root.find(key);
  return hf::JsonSite(file, found == root.end() ? null_value : *found, key);
}

}  // namespace

TokenizerJson::TokenizerJson(const std::string& file, const nlohmann::json& options) {
  const nlohmann::json root = read_json(file);
  check<ConfigError>(root.contains("model"), "tokenizer.json '{}' has no \"model\"", file);
  normalizer_ = hf::make_normalizer(member(file, root, "normalizer"));
  pre_tokenizer_ = hf::make_pre_tokenizer(member(file, root, "pre_tokenizer"));
  model_ = hf::make_model(member(file, root, "model"));
  post_processor_ = hf::make_post_processor(member(file, root, "post_processor"));
  read_added_tokens(root, file);
  vocab_size_ = model_->vocabulary().id_bound();
  for (const auto& [id, content] : added_contents_) vocab_size_ = std::max(vocab_size_, id + 1);
  single_specials_ = hf::post_process(post_processor_.get(), {}, nullptr).ids.size();
  const std::vector<int64_t> empty;
  pair_specials_ = hf::post_process(post_processor_.get(), {}, &empty).ids.size();
  resolve_special_tokens(root, options, file);
}

TokenizerJson::~TokenizerJson() = default;

// tokenizers does not keep the ids written in added_tokens: it adds the tokens again in order,
// each taking its id in the model's vocabulary if it has one, else the next free id after the
// model's (its entry count) and the added tokens so far.
void TokenizerJson::read_added_tokens(const nlohmann::json& root, const std::string& file) {
  const hf::JsonSite list = member(file, root, "added_tokens");
  std::vector<hf::AddedToken> tokens;  // one per content, specials first, as tokenizers orders them
  std::unordered_map<std::string, size_t> index_of;
  const auto model_count = static_cast<int64_t>(model_->entry_count());
  std::optional<int64_t> largest;
  if (!list.node().is_null()) {
    list.expect(list.node().is_array(), "an array of added tokens");
    for (size_t i = 0; i < list.node().size(); ++i) {
      const hf::JsonSite item = list.element(i);
      hf::AddedToken token;
      token.content = item.get_string("content");
      token.single_word = item.get_bool("single_word", false);
      token.lstrip = item.get_bool("lstrip", false);
      token.rstrip = item.get_bool("rstrip", false);
      token.special = item.get_bool("special", false);
      token.normalized = item.get_bool("normalized", !token.special);
      if (token.content.empty()) continue;  // tokenizers ignores empty tokens
      if (auto known = token_to_id(token.content)) {
        token.id = *known;
      } else {
        token.id =
            largest && (*largest >= model_count || model_count == 0) ? *largest + 1 : model_count;
      }
      largest = std::max(largest.value_or(token.id), token.id);
      added_ids_[token.content] = token.id;
      added_contents_[token.id] = token.content;
      const auto seen = index_of.find(token.content);
      if (seen == index_of.end()) {
        index_of.emplace(token.content, tokens.size());
        tokens.push_back(std::move(token));
      } else {
        // Seen before: the last flags count, and it stays special once it was.
        token.special = token.special || tokens[seen->second].special;
        tokens[seen->second] = std::move(token);
      }
    }
  }
  added_ = std::make_unique<hf::AddedVocabulary>(std::move(tokens), normalizer_.get(),
                                                 /*encode_special_tokens=*/true);
}

std::optional<int64_t> TokenizerJson::token_to_id(std::string_view token) const {
  const auto found = added_ids_.find(std::string(token));
  if (found != added_ids_.end()) return found->second;
  return model_->vocabulary().find(token);
}

std::vector<int64_t> TokenizerJson::encode_all(std::string_view text) const {
  const std::string valid = hf::sanitize_utf8(text);
  std::vector<int64_t> ids;
  std::vector<hf::PreToken> words;
  for (hf::TextPiece& piece : added_->extract_and_normalize(valid)) {
    if (piece.token_id >= 0) {
      ids.push_back(piece.token_id);
      continue;
    }
    words.clear();
    words.push_back({std::move(piece.text), piece.at_start});
    if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(words);
    for (const hf::PreToken& word : words) {
      if (!word.text.empty()) model_->tokenize(word.text, ids);
    }
  }
  return ids;
}

Encoding TokenizerJson::build_single(const std::vector<int64_t>& ids) const {
  return hf::post_process(post_processor_.get(), ids, nullptr);
}

Encoding TokenizerJson::build_pair(const std::vector<int64_t>& first,
                                   const std::vector<int64_t>& second) const {
  return hf::post_process(post_processor_.get(), first, &second);
}

std::string TokenizerJson::id_to_piece(int64_t id) const {
  const auto added = added_contents_.find(id);
  if (added != added_contents_.end()) return added->second;
  const std::string* token = model_->vocabulary().token(id);
  check<RecordError>(token != nullptr, "token id {} is not in the vocabulary of {} ids", id,
                     vocab_size_);
  return *token;
}

}  // namespace engine
