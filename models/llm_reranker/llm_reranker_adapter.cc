#include "models/llm_reranker/llm_reranker_adapter.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include <algorithm>

#include "engine/common/error.h"
#include "engine/runtime/pair_scoring_adapter.h"
#include "engine/runtime/sequence_batch.h"

namespace models::llm_reranker {
namespace {

using engine::check;
using engine::ConfigError;
using engine::Encoding;

// model.options: the text before each query and passage, and the prompt after the pair; their
// defaults come from the manifest (FlagLLMReranker's "A: ", "B: " and its prompt).
struct LlmRerankerOptions : engine::FamilyOptions {
  std::string query_instruction;
  std::string passage_instruction;
  std::string prompt;

  nlohmann::json settings() const override {
    return {{"query_instruction", query_instruction},
            {"passage_instruction", passage_instruction},
            {"prompt", prompt}};
  }
};

class LlmRerankerAdapter : public engine::PairScoringAdapter {
 public:
  explicit LlmRerankerAdapter(const engine::AdapterContext& context)
      : PairScoringAdapter(context.task), bundle_(context.bundle) {
    const auto& manifest = bundle_.manifest;
    const auto& document = manifest.document;
    const auto& options = engine::family_options<LlmRerankerOptions>(context);
    query_prefix_ = options.query_instruction;
    passage_prefix_ = options.passage_instruction;
    const std::string& prompt = options.prompt;
    const engine::Tokenizer& tokenizer = *bundle_.tokenizer;
    prompt_ids_ = tokenizer.encode(prompt);
    separator_ids_ = tokenizer.encode(document.value("separator", std::string("\n")));
    // The prompt counts in the passage's budget and is then appended again, as in FlagEmbedding.
    const auto longest =
        static_cast<int64_t>(task_.max_length + 2 * separator_ids_.size() + 2 * prompt_ids_.size());
    check<ConfigError>(longest <= manifest.max_positions,
                       "task.max_length {} makes sequences of up to {} tokens with the prompt, "
                       "more than the model's {} positions",
                       task_.max_length, longest, manifest.max_positions);
    yes_token_ = document.value("yes_token_id", int64_t{-1});
  }

  std::vector<Encoding> encode_pair(std::string_view query,
                                    std::string_view passage) const override {
    const engine::Tokenizer& tokenizer = *bundle_.tokenizer;
    const auto max_length = static_cast<size_t>(task_.max_length);
    std::vector<int64_t> query_ids =
        tokenizer.encode(query_prefix_ + std::string(query), max_length * 3 / 4);
    // Room for the passage: within max_length plus one separator and the prompt, after <bos>,
    // the query and the separator.
    const size_t budget = max_length + separator_ids_.size() + prompt_ids_.size();
    const size_t used = 1 + query_ids.size() + separator_ids_.size();
    const size_t room = std::min(max_length, budget > used ? budget - used : 0);
    const std::vector<int64_t> passage_ids =
        tokenizer.encode(passage_prefix_ + std::string(passage), room);

    Encoding encoding = tokenizer.build_single(query_ids);
    auto& ids = encoding.ids;
    ids.insert(ids.end(), separator_ids_.begin(), separator_ids_.end());
    ids.insert(ids.end(), passage_ids.begin(), passage_ids.end());
    ids.insert(ids.end(), separator_ids_.begin(), separator_ids_.end());
    ids.insert(ids.end(), prompt_ids_.begin(), prompt_ids_.end());
    encoding.type_ids.assign(ids.size(), 0);
    return {std::move(encoding)};
  }

  std::vector<engine::SequenceResult> run(const std::vector<const Encoding*>& batch,
                                          size_t padded_length) override {
    c10::InferenceMode inference;
    const std::vector<at::Tensor> outputs =
        engine::forward_sequences(bundle_, batch, padded_length).outputs;
    check<std::runtime_error>(!outputs.empty() && outputs[0].dim() == 1 &&
                                  outputs[0].size(0) == static_cast<int64_t>(batch.size()),
                              "the LLM reranker must return one 'Yes' logit per sequence");
    return results_from_scores(outputs[0], task_.normalize);
  }

  std::string describe() const override {
    return fmt::format("LLM reranker: logit of 'Yes' (id {}) after a {}-token prompt{}", yes_token_,
                       prompt_ids_.size(), task_.normalize ? ", through a sigmoid" : "");
  }

 private:
  engine::ModelBundle& bundle_;
  std::string query_prefix_;
  std::string passage_prefix_;
  std::vector<int64_t> prompt_ids_;
  std::vector<int64_t> separator_ids_;
  int64_t yes_token_ = -1;
};

}  // namespace

std::shared_ptr<const engine::FamilyOptions> read_options(const engine::OptionsContext& context) {
  const engine::ConfigNode& node = context.options;
  const nlohmann::json& document = context.manifest.document;
  auto options = std::make_shared<LlmRerankerOptions>();
  // FlagLLMReranker's defaults: "A: " before the query, "B: " before the passage.
  options->query_instruction =
      node.string("query_instruction", document.value("query_prefix", std::string("A: ")));
  options->passage_instruction =
      node.string("passage_instruction", document.value("passage_prefix", std::string("B: ")));
  options->prompt = node.string("prompt", document.value("prompt", std::string()));
  node.reject_unknown_keys();
  return options;
}

std::unique_ptr<engine::FamilyAdapter> make_adapter(const engine::AdapterContext& context) {
  return std::make_unique<LlmRerankerAdapter>(context);
}

}  // namespace models::llm_reranker
