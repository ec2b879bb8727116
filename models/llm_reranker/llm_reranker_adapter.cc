#include "models/llm_reranker/llm_reranker_adapter.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include <cmath>
#include <optional>

#include "engine/common/error.h"
#include "engine/runtime/pair_scoring_adapter.h"
#include "engine/runtime/sequence_batch.h"
#include "models/llm_reranker/rerank_template.h"

namespace models::llm_reranker {
namespace {

using engine::check;
using engine::ConfigError;
using engine::Encoding;

// model.options: the instruction the template's {instruction} gets (default the bundle's: none
// for mxbai-rerank-v2, Qwen3-Reranker's web-search one, FlagLLMReranker's prompt). A record's own
// "instruction" replaces it for that record.
struct LlmRerankerOptions : engine::FamilyOptions {
  std::string instruction;

  nlohmann::json settings() const override { return {{"instruction", instruction}}; }
};

class LlmRerankerAdapter : public engine::PairScoringAdapter {
 public:
  explicit LlmRerankerAdapter(const engine::AdapterContext& context)
      : PairScoringAdapter(context.task),
        bundle_(context.bundle),
        template_(RerankTemplate::from_manifest(context.bundle.manifest.document)),
        score_(ScoreSpec::from_manifest(context.bundle.manifest.document)),
        instruction_(engine::family_options<LlmRerankerOptions>(context).instruction) {
    const auto& manifest = bundle_.manifest;
    const int64_t longest = template_.longest(*bundle_.tokenizer, instruction_, task_.max_length,
                                              manifest.max_positions);
    check<ConfigError>(longest <= manifest.max_positions,
                       "task.max_length {} makes sequences of up to {} tokens with the {} "
                       "template, more than the model's {} positions",
                       task_.max_length, longest, template_.name(), manifest.max_positions);
  }

  bool takes_instruction() const override { return template_.uses_instruction(); }

  std::vector<Encoding> encode_pair(std::string_view query, std::string_view passage,
                                    const std::optional<std::string>& instruction) const override {
    Encoding encoding;
    encoding.ids =
        template_.build(*bundle_.tokenizer, query, passage, instruction.value_or(instruction_),
                        task_.max_length, bundle_.manifest.max_positions);
    encoding.type_ids.assign(encoding.ids.size(), 0);
    return {std::move(encoding)};
  }

  std::vector<engine::SequenceResult> run(const std::vector<const Encoding*>& batch,
                                          size_t padded_length) override {
    c10::InferenceMode inference;
    const std::vector<at::Tensor> outputs =
        engine::forward_sequences(bundle_, batch, padded_length).outputs;
    const auto tokens = static_cast<int64_t>(score_.token_ids.size());
    check<std::runtime_error>(!outputs.empty() && outputs[0].dim() == 2 &&
                                  outputs[0].size(0) == static_cast<int64_t>(batch.size()) &&
                                  outputs[0].size(1) == tokens,
                              "the LLM reranker must return [batch, {}] logits", tokens);
    const at::Tensor logits = outputs[0].to(at::kFloat).to(at::kCPU).contiguous();
    std::vector<engine::SequenceResult> results(batch.size());
    const bool sigmoid = task_.normalize && score_.rule != ScoreRule::kYesProbability;
    for (size_t i = 0; i < batch.size(); ++i) {
      double score = score_.score(logits.data_ptr<float>() + static_cast<int64_t>(i) * tokens);
      if (sigmoid) score = 1.0 / (1.0 + std::exp(score_.normalize_shift - score));
      results[i].score = static_cast<float>(score);
    }
    return results;
  }

  std::string describe() const override {
    std::string tokens;
    for (size_t i = 0; i < score_.tokens.size(); ++i) {
      tokens += fmt::format("{}'{}' (id {})", i ? ", " : "", score_.tokens[i], score_.token_ids[i]);
    }
    return fmt::format(
        "LLM reranker, {} template: {} {}{}", template_.name(), score_.describe(), tokens,
        task_.normalize && score_.rule != ScoreRule::kYesProbability ? ", through a sigmoid" : "");
  }

 private:
  engine::ModelBundle& bundle_;
  RerankTemplate template_;
  ScoreSpec score_;
  std::string instruction_;
};

}  // namespace

std::shared_ptr<const engine::FamilyOptions> read_options(const engine::OptionsContext& context) {
  const engine::ConfigNode& node = context.options;
  for (const char* old : {"prompt", "query_instruction", "passage_instruction"}) {
    check<ConfigError>(!node.has(old),
                       "{}: the LLM reranker's pair is its bundle's template now; model.options "
                       "takes 'instruction' (what FlagLLMReranker calls its prompt), and the "
                       "text before the query and the passage comes from engine.json",
                       node.where(old));
  }
  check<ConfigError>(context.manifest.document.contains("template"),
                     "this bundle was exported before LLM reranker templates (engine.json has no "
                     "\"template\"); export it again with tools/export.py");
  const RerankTemplate rerank_template = RerankTemplate::from_manifest(context.manifest.document);
  auto options = std::make_shared<LlmRerankerOptions>();
  options->instruction = node.string("instruction", rerank_template.default_instruction());
  if (node.has("instruction")) {
    check<ConfigError>(rerank_template.uses_instruction(),
                       "{}: the {} template has no place for an instruction",
                       node.where("instruction"), rerank_template.name());
  }
  node.reject_unknown_keys();
  return options;
}

std::unique_ptr<engine::FamilyAdapter> make_adapter(const engine::AdapterContext& context) {
  return std::make_unique<LlmRerankerAdapter>(context);
}

}  // namespace models::llm_reranker
