#include "engine/text/hf_model.h"

#include <fmt/format.h>

#include "engine/common/error.h"

namespace engine::hf {

void Vocabulary::add(std::string_view token, int64_t id) {
  tokens_.emplace_back(token);
  const std::string& stored = tokens_.back();
  ids_.insert_or_assign(std::string_view(stored), id);
  if (id >= static_cast<int64_t>(by_id_.size()))
    by_id_.resize(static_cast<size_t>(id) + 1, nullptr);
  by_id_[static_cast<size_t>(id)] = &stored;
}

const std::string* Vocabulary::token(int64_t id) const {
  if (id < 0 || id >= id_bound()) return nullptr;
  return by_id_[static_cast<size_t>(id)];
}

void read_vocabulary_object(const JsonSite& site, Vocabulary& vocabulary) {
  site.expect(site.node().is_object(), "a vocabulary object {\"token\": id, ...}");
  for (const auto& [token, id] : site.node().items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1LL << 31)) {
      site.fail(fmt::format("the id of \"{}\" is {}, expected an integer from 0 to 2^31", token,
                            id.dump()));
    }
    vocabulary.add(token, id.get<int64_t>());
  }
}

namespace {

// Whole words looked up in the vocabulary, the unknown token for the others.
class WordLevelModel : public Model {
 public:
  explicit WordLevelModel(const JsonSite& site) {
    read_vocabulary_object(site.at("vocab"), vocabulary_);
    unk_token_ = site.get_string("unk_token", "<unk>");
    unk_id_ = vocabulary_.find(unk_token_);
  }

  void tokenize(std::string_view word, std::vector<int64_t>& ids) const override {
    if (auto id = vocabulary_.find(word)) {
      ids.push_back(*id);
      return;
    }
    check<RecordError>(unk_id_.has_value(),
                       "the WordLevel tokenizer has no unknown token '{}' for the word '{}'",
                       unk_token_, word);
    ids.push_back(*unk_id_);
  }

  std::optional<int64_t> unk_id() const override { return unk_id_; }

 private:
  std::string unk_token_;
  std::optional<int64_t> unk_id_;
};

}  // namespace

std::unique_ptr<Model> make_model(const JsonSite& site) {
  site.expect(site.node().is_object(), "a model object");
  // Old files have no "type": tokenizers then tries each model in turn; these fields tell them
  // apart.
  std::string type;
  if (site.has("type")) {
    type = site.type("model", {"WordPiece", "BPE", "Unigram", "WordLevel"});
  } else if (site.has("merges")) {
    type = "BPE";
  } else if (site.node().contains("vocab") && site.node()["vocab"].is_array()) {
    type = "Unigram";
  } else if (site.has("max_input_chars_per_word") || site.has("continuing_subword_prefix")) {
    type = "WordPiece";
  } else {
    type = "WordLevel";
  }
  if (type == "WordPiece") return make_wordpiece_model(site);
  if (type == "BPE") return make_bpe_model(site);
  if (type == "Unigram") return make_unigram_model(site);
  return std::make_unique<WordLevelModel>(site);
}

}  // namespace engine::hf
