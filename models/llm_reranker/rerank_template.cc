#include "models/llm_reranker/rerank_template.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "engine/common/error.h"
#include "engine/text/tokenizer.h"

namespace models::llm_reranker {
namespace {

using engine::check;
using engine::ConfigError;
using nlohmann::json;

const json& member(const json& object, const char* key, const std::string& where) {
  check<ConfigError>(object.is_object() && object.contains(key), "engine.json: {} has no \"{}\"",
                     where, key);
  return object.at(key);
}

std::string string_member(const json& object, const char* key, const std::string& where) {
  const json& value = member(object, key, where);
  check<ConfigError>(value.is_string(), "engine.json: {}.{} must be a string", where, key);
  return value.get<std::string>();
}

std::vector<TemplatePiece> pieces(const json& segment, const std::string& where) {
  check<ConfigError>(segment.is_array(), "engine.json: {} must be a list of pieces", where);
  std::vector<TemplatePiece> result;
  for (size_t i = 0; i < segment.size(); ++i) {
    const json& piece = segment[i];
    const std::string at = fmt::format("{}[{}]", where, i);
    TemplatePiece out;
    if (piece.is_object() && piece.contains("ids")) {
      check<ConfigError>(piece.at("ids").is_array(), "engine.json: {}.ids must be a list", at);
      for (const json& id : piece.at("ids")) {
        check<ConfigError>(id.is_number_integer() && id.get<int64_t>() >= 0,
                           "engine.json: {}.ids must hold token ids", at);
        out.ids.push_back(id.get<int64_t>());
      }
      out.fixed = true;
    } else {
      out.text = string_member(piece, "text", at);
    }
    result.push_back(std::move(out));
  }
  return result;
}

// `text` with each {name} of `values` replaced, in one pass: a value is never searched again, so
// a query holding "{passage}" stays as written.
std::string substitute(
    std::string_view text,
    std::initializer_list<std::pair<std::string_view, std::string_view>> values) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    bool replaced = false;
    if (text[i] == '{') {
      for (const auto& [name, value] : values) {
        if (text.compare(i + 1, name.size(), name) == 0 && i + 1 + name.size() < text.size() &&
            text[i + 1 + name.size()] == '}') {
          out += value;
          i += name.size() + 2;
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out += text[i++];
  }
  return out;
}

std::vector<int64_t> segment_ids(const engine::Tokenizer& tokenizer,
                                 const std::vector<TemplatePiece>& segment,
                                 const std::string& instruction) {
  std::vector<int64_t> ids;
  for (const TemplatePiece& piece : segment) {
    const std::vector<int64_t> piece_ids =
        piece.fixed ? piece.ids
                    : tokenizer.encode(substitute(piece.text, {{"instruction", instruction}}));
    ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
  }
  return ids;
}

bool mentions_instruction(const std::vector<TemplatePiece>& segment) {
  return std::any_of(segment.begin(), segment.end(), [](const TemplatePiece& piece) {
    return !piece.fixed && piece.text.find("{instruction}") != std::string::npos;
  });
}

size_t clamp_room(int64_t room) { return room > 0 ? static_cast<size_t>(room) : 0; }

}  // namespace

RerankTemplate RerankTemplate::from_manifest(const json& document) {
  const json& block = member(document, "template", "the manifest");
  RerankTemplate t;
  t.name_ = string_member(block, "name", "template");
  const std::string truncation = string_member(block, "truncation", "template");
  if (truncation == "flag_llm") {
    t.truncation_ = Truncation::kFlagLlm;
  } else if (truncation == "whole_text") {
    t.truncation_ = Truncation::kWholeText;
  } else if (truncation == "mxbai") {
    t.truncation_ = Truncation::kMxbai;
  } else {
    throw ConfigError(fmt::format(
        "engine.json: template.truncation '{}' is not a rule this engine has (flag_llm, "
        "whole_text, mxbai); a newer exporter made this bundle",
        truncation));
  }
  const json& max_length = member(block, "max_length", "template");
  check<ConfigError>(max_length.is_number_integer() && max_length.get<int64_t>() > 0,
                     "engine.json: template.max_length must be a positive integer");
  t.max_length_ = max_length.get<int64_t>();
  t.prefix_ = pieces(member(block, "prefix", "template"), "template.prefix");
  t.separator_ = pieces(member(block, "separator", "template"), "template.separator");
  t.suffix_ = pieces(member(block, "suffix", "template"), "template.suffix");
  for (const char* part : {"query", "passage"}) {
    const std::vector<TemplatePiece> segment =
        pieces(member(block, part, "template"), fmt::format("template.{}", part));
    check<ConfigError>(segment.size() == 1 && !segment[0].fixed,
                       "engine.json: template.{} must be one text piece", part);
    (std::string_view(part) == "query" ? t.query_ : t.passage_) = segment[0].text;
  }
  const json& instruction = member(block, "instruction", "template");
  t.instruction_format_ = string_member(instruction, "format", "template.instruction");
  const json& fallback = member(instruction, "default", "template.instruction");
  check<ConfigError>(fallback.is_null() || fallback.is_string(),
                     "engine.json: template.instruction.default must be a string or null");
  t.has_default_instruction_ = fallback.is_string();
  if (t.has_default_instruction_) t.default_instruction_ = fallback.get<std::string>();
  t.uses_instruction_ = t.query_.find("{instruction}") != std::string::npos ||
                        mentions_instruction(t.prefix_) || mentions_instruction(t.separator_) ||
                        mentions_instruction(t.suffix_);
  return t;
}

RerankTemplate::Fixed RerankTemplate::fill(const engine::Tokenizer& tokenizer,
                                           const std::string& instruction) const {
  const std::string filled = instruction.empty()
                                 ? std::string()
                                 : substitute(instruction_format_, {{"instruction", instruction}});
  Fixed fixed;
  fixed.prefix = segment_ids(tokenizer, prefix_, filled);
  fixed.separator = segment_ids(tokenizer, separator_, filled);
  fixed.suffix = segment_ids(tokenizer, suffix_, filled);
  fixed.query_text = substitute(query_, {{"instruction", filled}});
  return fixed;
}

engine::Encoding RerankTemplate::build(const engine::Tokenizer& tokenizer, std::string_view query,
                                       std::string_view passage, const std::string& instruction,
                                       int64_t max_length, int64_t max_positions) const {
  const Fixed fixed = fill(tokenizer, instruction);
  const auto prefix = static_cast<int64_t>(fixed.prefix.size());
  const auto separator = static_cast<int64_t>(fixed.separator.size());
  const auto suffix = static_cast<int64_t>(fixed.suffix.size());
  const std::string query_text = substitute(fixed.query_text, {{"query", query}});
  const std::string passage_text = substitute(passage_, {{"passage", passage}});

  std::vector<int64_t> query_ids, passage_ids;
  switch (truncation_) {
    case Truncation::kFlagLlm: {
      query_ids = tokenizer.encode(query_text, clamp_room(max_length * 3 / 4));
      const int64_t used = prefix + static_cast<int64_t>(query_ids.size()) + separator;
      passage_ids = tokenizer.encode(passage_text,
                                     clamp_room(std::min(max_length, max_length + suffix - used)));
      break;
    }
    case Truncation::kWholeText: {
      const int64_t budget = max_length - prefix - suffix;
      check<engine::RecordError>(budget > 0,
                                 "the instruction and the template take {} of the {} tokens of "
                                 "task.max_length; no room is left for the query",
                                 prefix + suffix, max_length);
      query_ids = tokenizer.encode(query_text, clamp_room(budget));
      passage_ids = tokenizer.encode(passage_text,
                                     clamp_room(budget - static_cast<int64_t>(query_ids.size())));
      break;
    }
    case Truncation::kMxbai: {
      const int64_t length = std::min(max_length, max_positions - prefix - suffix);
      check<engine::RecordError>(length > 0,
                                 "the instruction and the template take {} of the model's {} "
                                 "positions; no room is left for the pair",
                                 prefix + suffix, max_positions);
      query_ids = tokenizer.encode(query_text, clamp_room(length * 3 / 4));
      const auto q = static_cast<int64_t>(query_ids.size());
      passage_ids =
          tokenizer.encode(passage_text, clamp_room(std::min({max_positions - q - prefix - suffix,
                                                              length, length - q - separator})));
      break;
    }
  }
  engine::Encoding encoding;
  std::vector<int64_t>& ids = encoding.ids;
  ids = fixed.prefix;
  ids.insert(ids.end(), query_ids.begin(), query_ids.end());
  ids.insert(ids.end(), fixed.separator.begin(), fixed.separator.end());
  encoding.shared_prefix = ids.size();
  ids.insert(ids.end(), passage_ids.begin(), passage_ids.end());
  ids.insert(ids.end(), fixed.suffix.begin(), fixed.suffix.end());
  encoding.type_ids.assign(ids.size(), 0);
  return encoding;
}

int64_t RerankTemplate::longest(const engine::Tokenizer& tokenizer, const std::string& instruction,
                                int64_t max_length, int64_t max_positions) const {
  const Fixed fixed = fill(tokenizer, instruction);
  const auto prefix = static_cast<int64_t>(fixed.prefix.size());
  const auto suffix = static_cast<int64_t>(fixed.suffix.size());
  switch (truncation_) {
    case Truncation::kFlagLlm:
      return max_length + 2 * suffix;
    case Truncation::kWholeText:
      return max_length;
    case Truncation::kMxbai:
      return std::min(max_length, max_positions - prefix - suffix) + prefix + suffix;
  }
  return max_length;
}

ScoreSpec ScoreSpec::from_manifest(const json& document) {
  const json& block = member(document, "score", "the manifest");
  ScoreSpec spec;
  const std::string rule = string_member(block, "rule", "score");
  size_t needed = 1;
  if (rule == "logit") {
    spec.rule = ScoreRule::kLogit;
  } else if (rule == "yes_probability") {
    spec.rule = ScoreRule::kYesProbability;
    needed = 2;
  } else if (rule == "logit_difference") {
    spec.rule = ScoreRule::kLogitDifference;
    needed = 2;
  } else if (rule == "layer_head") {
    spec.rule = ScoreRule::kLayerHead;
    needed = 0;
    check<ConfigError>(block.contains("layer") && block.at("layer").is_number_integer(),
                       "engine.json: score.rule layer_head needs the integer score.layer");
    spec.layer = block.at("layer").get<int64_t>();
  } else {
    throw ConfigError(fmt::format(
        "engine.json: score.rule '{}' is not one this engine has (logit, yes_probability, "
        "logit_difference, layer_head)",
        rule));
  }
  for (const json& id : member(block, "token_ids", "score")) {
    check<ConfigError>(id.is_number_integer(), "engine.json: score.token_ids must be integers");
    spec.token_ids.push_back(id.get<int64_t>());
  }
  for (const json& token : member(block, "tokens", "score")) {
    spec.tokens.push_back(token.is_string() ? token.get<std::string>() : token.dump());
  }
  check<ConfigError>(spec.token_ids.size() == needed && spec.tokens.size() == needed,
                     "engine.json: score.rule {} reads {} tokens, score lists {} ids and {} tokens",
                     rule, needed, spec.token_ids.size(), spec.tokens.size());
  if (block.contains("normalize_shift")) {
    check<ConfigError>(block.at("normalize_shift").is_number(),
                       "engine.json: score.normalize_shift must be a number");
    spec.normalize_shift = block.at("normalize_shift").get<double>();
  }
  return spec;
}

double ScoreSpec::score(const float* logits) const {
  switch (rule) {
    case ScoreRule::kLogit:
    case ScoreRule::kLayerHead:
      return logits[0];
    case ScoreRule::kYesProbability:
      // exp(log_softmax([no, yes]))[yes], as the model card computes it.
      return 1.0 / (1.0 + std::exp(static_cast<double>(logits[1]) - logits[0]));
    case ScoreRule::kLogitDifference:
      return static_cast<double>(logits[0]) - logits[1];
  }
  return logits[0];
}

const char* ScoreSpec::describe() const {
  switch (rule) {
    case ScoreRule::kLogit:
      return "the logit of";
    case ScoreRule::kYesProbability:
      return "the probability, over two, of the first of";
    case ScoreRule::kLogitDifference:
      return "the first logit minus the second of";
    case ScoreRule::kLayerHead:
      return "the output of the score head of";
  }
  return "";
}

}  // namespace models::llm_reranker
