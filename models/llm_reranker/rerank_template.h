// How an LLM reranker writes a (query, passage) pair and reads its score, as the bundle's
// manifest says (its "template" and "score" blocks, written by models/llm_reranker/templates.py):
//   prefix + query part + separator + passage part + suffix
// each segment a list of pieces, fixed ids (special tokens included) or text tokenized here with
// {query}, {passage} and {instruction} filled in; the query and passage parts cut by the
// reference implementation's rule; the score one rule over the logits of a few tokens.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/text/tokenizer.h"

namespace models::llm_reranker {

// The truncation rules of the references, by name in the manifest.
enum class Truncation {
  kFlagLlm,    // FlagLLMReranker: query to max_length * 3/4, passage to what max_length + |suffix|
               // leaves after the prefix, the query and the separator (at most max_length)
  kWholeText,  // Qwen3-Reranker: query and passage parts cut as one text to max_length minus the
               // prefix and the suffix, from the right
  kMxbai,      // MxbaiRerankV2: max_length within the positions the templates leave; the query
               // to 3/4 of it, the passage to what is left of it and of the positions
};

enum class ScoreRule {
  kLogit,            // the first token's logit (bge-reranker-v2-gemma: 'Yes')
  kYesProbability,   // softmax over (first, second) taken at the first (Qwen3-Reranker: P(yes))
  kLogitDifference,  // first minus second (mxbai-rerank-v2: '1' - '0')
  kLayerHead,        // the score head of one layer, the graph's one output
                     // (bge-reranker-v2-minicpm-layerwise)
};

struct TemplatePiece {
  std::vector<int64_t> ids;  // fixed pieces
  std::string text;          // text pieces, with placeholders
  bool fixed = false;
};

class RerankTemplate {
 public:
  // From the manifest document; throws ConfigError naming the key that is wrong.
  static RerankTemplate from_manifest(const nlohmann::json& document);

  // The token ids of one pair under `instruction` (empty: none; the instruction's format is
  // applied here), cut at `max_length` as the template's rule cuts, and how many of them every
  // passage of the query shares (the prefix, the query part and the separator); throws
  // RecordError when the instruction leaves no room for the pair.
  engine::Encoding build(const engine::Tokenizer& tokenizer, std::string_view query,
                         std::string_view passage, const std::string& instruction,
                         int64_t max_length, int64_t max_positions) const;
  // The longest sequence `build` makes at `max_length` under `instruction`.
  int64_t longest(const engine::Tokenizer& tokenizer, const std::string& instruction,
                  int64_t max_length, int64_t max_positions) const;

  const std::string& name() const { return name_; }
  const std::string& default_instruction() const { return default_instruction_; }
  bool has_default_instruction() const { return has_default_instruction_; }
  bool uses_instruction() const { return uses_instruction_; }
  int64_t default_max_length() const { return max_length_; }

 private:
  struct Fixed {  // the segments without the pair, under one instruction
    std::vector<int64_t> prefix, separator, suffix;
    std::string query_text;  // the query part with {instruction} filled, {query} left
  };
  Fixed fill(const engine::Tokenizer& tokenizer, const std::string& instruction) const;

  std::string name_;
  Truncation truncation_ = Truncation::kFlagLlm;
  int64_t max_length_ = 0;
  std::vector<TemplatePiece> prefix_, separator_, suffix_;
  std::string query_, passage_;  // the parts' texts
  std::string instruction_format_;
  std::string default_instruction_;
  bool has_default_instruction_ = false;
  bool uses_instruction_ = false;
};

struct ScoreSpec {
  ScoreRule rule = ScoreRule::kLogit;
  std::vector<std::string> tokens;
  std::vector<int64_t> token_ids;
  int64_t layer = 0;           // kLayerHead: the cutoff layer
  double normalize_shift = 0;  // task.normalize: sigmoid(score - shift) for logit-valued rules

  static ScoreSpec from_manifest(const nlohmann::json& document);
  // The values the graph returns per row: a logit per token, or the layer head's one.
  int64_t columns() const {
    return rule == ScoreRule::kLayerHead ? 1 : static_cast<int64_t>(token_ids.size());
  }
  // The score of one row of the graph's logits (columns() values).
  double score(const float* logits) const;
  const char* describe() const;
};

}  // namespace models::llm_reranker
