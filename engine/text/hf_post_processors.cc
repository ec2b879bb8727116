#include "engine/text/hf_post_processors.h"

#include <fmt/format.h>

#include <map>
#include <string>

namespace engine::hf {
namespace {

Encoding tokens(std::initializer_list<int64_t> ids, int64_t type_id) {
  Encoding encoding;
  encoding.ids = ids;
  encoding.type_ids.assign(encoding.ids.size(), type_id);
  return encoding;
}

void set_type(Encoding& encoding, int64_t type_id) {
  encoding.type_ids.assign(encoding.ids.size(), type_id);
}

// A [token, id] pair of BertProcessing and RobertaProcessing.
int64_t token_id(const JsonSite& site, const char* key) {
  const JsonSite pair = site.at(key);
  pair.expect(
      pair.node().is_array() && pair.node().size() == 2 && pair.node()[1].is_number_integer(),
      "a [token, id] pair");
  return pair.node()[1].get<int64_t>();
}

// [CLS] A [SEP], pair [CLS] A [SEP] B [SEP] with B's part of type 1.
class BertProcessing : public PostProcessor {
 public:
  explicit BertProcessing(const JsonSite& site)
      : cls_(token_id(site, "cls")), sep_(token_id(site, "sep")) {}

  void process(std::vector<Encoding>& parts) const override {
    std::vector<Encoding> out;
    for (size_t i = 0; i < parts.size(); ++i) {
      const int64_t type = i == 0 ? 0 : 1;
      if (i == 0) out.push_back(tokens({cls_}, type));
      set_type(parts[i], type);
      out.push_back(std::move(parts[i]));
      out.push_back(tokens({sep_}, type));
    }
    parts = std::move(out);
  }
  std::optional<int64_t> leading_special() const override { return cls_; }
  std::optional<int64_t> trailing_special() const override { return sep_; }

 private:
  int64_t cls_, sep_;
};

// <s> A </s>, pair <s> A </s></s> B </s>, every type id 0.
class RobertaProcessing : public PostProcessor {
 public:
  explicit RobertaProcessing(const JsonSite& site)
      : cls_(token_id(site, "cls")), sep_(token_id(site, "sep")) {}

  void process(std::vector<Encoding>& parts) const override {
    std::vector<Encoding> out;
    for (size_t i = 0; i < parts.size(); ++i) {
      out.push_back(tokens({i == 0 ? cls_ : sep_}, 0));
      set_type(parts[i], 0);
      out.push_back(std::move(parts[i]));
      out.push_back(tokens({sep_}, 0));
    }
    parts = std::move(out);
  }
  std::optional<int64_t> leading_special() const override { return cls_; }
  std::optional<int64_t> trailing_special() const override { return sep_; }

 private:
  int64_t cls_, sep_;
};

// Pieces: a sequence ($A, $B) or a special token, each with its type id.
class TemplateProcessing : public PostProcessor {
 public:
  explicit TemplateProcessing(const JsonSite& site) {
    read_special_tokens(site.at("special_tokens"));
    single_ = read_template(site.at("single"));
    pair_ = read_template(site.at("pair"));
  }

  void process(std::vector<Encoding>& parts) const override {
    const std::vector<Piece>& pieces = parts.size() > 1 ? pair_ : single_;
    std::vector<Encoding> out;
    for (const Piece& piece : pieces) {
      if (piece.sequence >= 0) {
        if (static_cast<size_t>(piece.sequence) >= parts.size()) continue;
        Encoding part = parts[static_cast<size_t>(piece.sequence)];
        set_type(part, piece.type_id);
        out.push_back(std::move(part));
      } else {
        Encoding special;
        special.ids = piece.ids;
        set_type(special, piece.type_id);
        out.push_back(std::move(special));
      }
    }
    parts = std::move(out);
  }

  std::optional<int64_t> leading_special() const override {
    if (single_.empty() || single_.front().sequence >= 0 || single_.front().ids.empty()) {
      return std::nullopt;
    }
    return single_.front().ids.front();
  }
  std::optional<int64_t> trailing_special() const override {
    if (single_.empty() || single_.back().sequence >= 0 || single_.back().ids.empty()) {
      return std::nullopt;
    }
    return single_.back().ids.back();
  }

 private:
  struct Piece {
    int sequence = -1;  // 0 for A, 1 for B, -1 for a special token
    std::vector<int64_t> ids;
    int64_t type_id = 0;
  };

  void read_special_tokens(const JsonSite& site) {
    site.expect(site.node().is_object(), "an object of special tokens");
    for (const auto& [name, token] : site.node().items()) {
      const JsonSite entry = site.at(name);
      const JsonSite ids = entry.at("ids");
      ids.expect(ids.node().is_array(), "an array of ids");
      std::vector<int64_t>& target = special_tokens_[name];
      for (const auto& id : ids.node()) {
        ids.expect(id.is_number_integer(), "integer ids");
        target.push_back(id.get<int64_t>());
      }
    }
  }

  std::vector<Piece> read_template(const JsonSite& site) const {
    site.expect(site.node().is_array(), "an array of template pieces");
    std::vector<Piece> pieces;
    for (size_t i = 0; i < site.node().size(); ++i) {
      const JsonSite item = site.element(i);
      Piece piece;
      if (item.has("Sequence")) {
        const JsonSite sequence = item.at("Sequence");
        const std::string id = sequence.get_string("id");
        if (id != "A" && id != "B") sequence.fail("expected the sequence id A or B, found " + id);
        piece.sequence = id == "A" ? 0 : 1;
        piece.type_id = sequence.get_int("type_id");
      } else if (item.has("SpecialToken")) {
        const JsonSite special = item.at("SpecialToken");
        const std::string id = special.get_string("id");
        const auto found = special_tokens_.find(id);
        if (found == special_tokens_.end()) {
          special.fail(fmt::format("the special token '{}' is not in special_tokens", id));
        }
        piece.ids = found->second;
        piece.type_id = special.get_int("type_id");
      } else {
        item.fail("expected a {\"Sequence\": ...} or {\"SpecialToken\": ...} piece");
      }
      pieces.push_back(std::move(piece));
    }
    return pieces;
  }

  std::map<std::string, std::vector<int64_t>> special_tokens_;
  std::vector<Piece> single_;
  std::vector<Piece> pair_;
};

// Offsets only: no change to the ids.
class ByteLevelProcessing : public PostProcessor {
 public:
  void process(std::vector<Encoding>&) const override {}
};

class Sequence : public PostProcessor {
 public:
  explicit Sequence(const JsonSite& site) {
    const JsonSite list = site.at("processors");
    list.expect(list.node().is_array(), "an array of post-processors");
    for (size_t i = 0; i < list.node().size(); ++i) {
      if (auto processor = make_post_processor(list.element(i))) {
        steps_.push_back(std::move(processor));
      }
    }
  }

  void process(std::vector<Encoding>& parts) const override {
    for (const auto& step : steps_) step->process(parts);
  }
  std::optional<int64_t> leading_special() const override {
    for (const auto& step : steps_) {
      if (auto id = step->leading_special()) return id;
    }
    return std::nullopt;
  }
  std::optional<int64_t> trailing_special() const override {
    for (const auto& step : steps_) {
      if (auto id = step->trailing_special()) return id;
    }
    return std::nullopt;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const JsonSite& site) {
  if (site.node().is_null()) return nullptr;
  const std::string type = site.type(
      "post-processor",
      {"TemplateProcessing", "BertProcessing", "RobertaProcessing", "ByteLevel", "Sequence"});
  if (type == "TemplateProcessing") return std::make_unique<TemplateProcessing>(site);
  if (type == "BertProcessing") return std::make_unique<BertProcessing>(site);
  if (type == "RobertaProcessing") return std::make_unique<RobertaProcessing>(site);
  if (type == "ByteLevel") return std::make_unique<ByteLevelProcessing>();
  return std::make_unique<Sequence>(site);
}

Encoding post_process(const PostProcessor* processor, const std::vector<int64_t>& first,
                      const std::vector<int64_t>* second) {
  std::vector<Encoding> parts(second ? 2 : 1);
  parts[0].ids = first;
  set_type(parts[0], 0);
  if (second) {
    parts[1].ids = *second;
    set_type(parts[1], 1);
  }
  if (processor) processor->process(parts);
  Encoding result;
  for (const Encoding& part : parts) {
    result.ids.insert(result.ids.end(), part.ids.begin(), part.ids.end());
    result.type_ids.insert(result.type_ids.end(), part.type_ids.begin(), part.type_ids.end());
  }
  return result;
}

}  // namespace engine::hf
