// tokenizer.json models: a word (one pre-tokenized piece) to ids. WordPiece, BPE, Unigram and
// WordLevel, each in its own file; the vocabulary they share is here.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/text/hf_json.h"

namespace engine::hf {

// Token strings and ids, both ways, without copying the key on lookup.
class Vocabulary {
 public:
  // A token added twice maps to its last id, as in tokenizers' hash maps.
  void add(std::string_view token, int64_t id);
  std::optional<int64_t> find(std::string_view token) const {
    const auto found = ids_.find(token);
    return found == ids_.end() ? std::nullopt : std::optional<int64_t>(found->second);
  }
  // nullptr for an id that no token has.
  const std::string* token(int64_t id) const;
  size_t size() const { return ids_.size(); }
  // One past the largest id.
  int64_t id_bound() const { return static_cast<int64_t>(by_id_.size()); }

 private:
  std::deque<std::string> tokens_;  // stable storage for the keys of ids_
  std::unordered_map<std::string_view, int64_t> ids_;
  std::vector<const std::string*> by_id_;
};

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of non-empty `word`.
  virtual void tokenize(std::string_view word, std::vector<int64_t>& ids) const = 0;
  const Vocabulary& vocabulary() const { return vocabulary_; }
  // tokenizers' get_vocab_size: the entries of the model's vocabulary.
  virtual size_t entry_count() const { return vocabulary_.size(); }
  // The model's unknown token, if it has one.
  virtual std::optional<int64_t> unk_id() const = 0;

 protected:
  Vocabulary vocabulary_;
};

// The model that `site` describes (WordPiece, BPE, Unigram, WordLevel).
std::unique_ptr<Model> make_model(const JsonSite& site);
std::unique_ptr<Model> make_wordpiece_model(const JsonSite& site);
std::unique_ptr<Model> make_bpe_model(const JsonSite& site);
std::unique_ptr<Model> make_unigram_model(const JsonSite& site);

// Reads a {"token": id, ...} object into `vocabulary`.
void read_vocabulary_object(const JsonSite& site, Vocabulary& vocabulary);

}  // namespace engine::hf
