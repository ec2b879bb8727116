#include "models/llm_reranker/llm_reranker_adapter.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
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

// A continuation's attention mask is one [1, 1, T, P + T] tensor (prefix_reuse.py), where whole
// rows need none: groups whose remainders would make it larger than this many elements (64 MB
// in float32; a 4k-token passage after a 64-token prefix) run whole, where the prefix is a small
// part of the work anyway.
constexpr int64_t kMaxContinuationMask = int64_t{1} << 24;

// model.options: the instruction the template's {instruction} gets (default the bundle's: none
// for mxbai-rerank-v2, Qwen3-Reranker's web-search one, FlagLLMReranker's prompt); a record's own
// "instruction" replaces it for that record. prefix_reuse (default true, where the bundle has the
// methods): a record's shared prefix runs once and its passages' remainders after it
// (models/llm_reranker/prefix_reuse.py).
struct LlmRerankerOptions : engine::FamilyOptions {
  std::string instruction;
  bool prefix_reuse = true;

  nlohmann::json settings() const override {
    return {{"instruction", instruction}, {"prefix_reuse", prefix_reuse}};
  }
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
    if (engine::family_options<LlmRerankerOptions>(context).prefix_reuse &&
        manifest.document.contains("prefix_reuse")) {
      const nlohmann::json& reuse = manifest.document.at("prefix_reuse");
      prefix_method_ = reuse.value("prefix_method", std::string());
      continue_method_ = reuse.value("continue_method", std::string());
      // A frozen graph (model.graph fused, model.quantize int8) keeps forward only.
      reuse_ = bundle_.model != nullptr && bundle_.model->has_method(prefix_method_) &&
               bundle_.model->has_method(continue_method_);
    }
  }

  bool takes_instruction() const override { return template_.uses_instruction(); }

  bool runs_shared_prefixes_once() const override { return reuse_; }

  void forget_between_batches() override {
    last_prefix_.clear();
    last_cache_.clear();
  }

  // What one decoder layer holds at its peak, per token: the residual stream and its norm, and the
  // larger of the MLP's three [intermediate] tensors and attention's projections (queries, keys
  // and values, rotated, grouped keys and values repeated). Nothing is length-squared where the
  // graph's attention is causal with no mask ("padding": "right"); transformers' attention (Gemma
  // 2) adds its [B, 1, L, L] mask and [B, heads, L, L] scores. On the Qwen3-Reranker-0.6B shape in
  // fp32 this says 57 KB per token where 42 to 49 KB were measured (docs/memory.md).
  std::optional<MemoryEstimate> memory_estimate() const override {
    const nlohmann::json& document = bundle_.manifest.document;
    const nlohmann::json arch = document.value("architecture", nlohmann::json::object());
    for (const char* key : {"hidden_size", "intermediate_size", "num_heads", "head_dim"}) {
      if (!arch.contains(key) || !arch.at(key).is_number_integer()) return std::nullopt;
    }
    const auto value = [&](const char* key) { return arch.at(key).get<double>(); };
    const double kv_heads =
        arch.contains("num_kv_heads") && arch.at("num_kv_heads").is_number_integer()
            ? value("num_kv_heads")
            : value("num_heads");
    const double attention = 4 * (value("num_heads") + kv_heads) * value("head_dim");
    const double elements =
        2 * value("hidden_size") + std::max(3 * value("intermediate_size"), attention);
    const auto bytes = static_cast<double>(c10::elementSize(bundle_.dtype));
    MemoryEstimate estimate;
    estimate.per_token = bytes * elements;
    if (document.value("padding", std::string("either")) != "right") {
      estimate.per_token_squared = bytes * (value("num_heads") + 1) + 1;
    }
    return estimate;
  }

  std::vector<Encoding> encode_pair(std::string_view query, std::string_view passage,
                                    const std::optional<std::string>& instruction) const override {
    return {template_.build(*bundle_.tokenizer, query, passage, instruction.value_or(instruction_),
                            task_.max_length, bundle_.manifest.max_positions)};
  }

  std::vector<engine::SequenceResult> run(const std::vector<const Encoding*>& batch,
                                          size_t padded_length) override {
    c10::InferenceMode inference;
    const at::Tensor logits =
        reuse_ ? logits_reusing_prefixes(batch, padded_length)
               : checked(engine::forward_sequences(bundle_, batch, padded_length).outputs,
                         batch.size());
    const int64_t columns = score_.columns();
    std::vector<engine::SequenceResult> results(batch.size());
    const bool sigmoid = task_.normalize && score_.rule != ScoreRule::kYesProbability;
    for (size_t i = 0; i < batch.size(); ++i) {
      double score = score_.score(logits.data_ptr<float>() + static_cast<int64_t>(i) * columns);
      if (sigmoid) score = 1.0 / (1.0 + std::exp(score_.normalize_shift - score));
      results[i].score = static_cast<float>(score);
    }
    return results;
  }

  std::string describe() const override {
    std::string tokens = score_.rule == ScoreRule::kLayerHead
                             ? fmt::format("layer {}", score_.layer)
                             : std::string();
    for (size_t i = 0; i < score_.tokens.size(); ++i) {
      tokens += fmt::format("{}'{}' (id {})", i ? ", " : "", score_.tokens[i], score_.token_ids[i]);
    }
    return fmt::format(
        "LLM reranker, {} template: {} {}{}{}", template_.name(), score_.describe(), tokens,
        task_.normalize && score_.rule != ScoreRule::kYesProbability ? ", through a sigmoid" : "",
        reuse_ ? "; a record's shared prefix runs once" : "");
  }

 private:
  // The logits [rows, K] of a graph's outputs, on the CPU in float32, after checking their shape.
  at::Tensor checked(const std::vector<at::Tensor>& outputs, size_t rows) const {
    const int64_t columns = score_.columns();
    check<std::runtime_error>(!outputs.empty() && outputs[0].dim() == 2 &&
                                  outputs[0].size(0) == static_cast<int64_t>(rows) &&
                                  outputs[0].size(1) == columns,
                              "the LLM reranker must return [batch, {}] logits", columns);
    return outputs[0].to(at::kFloat).to(at::kCPU).contiguous();
  }

  // The keys and values of `prefix`: the last prefix's again when this is the same one (the next
  // batch of one record's passages), else one pass of prefix_method.
  const std::vector<at::Tensor>& prefix_cache(const std::vector<int64_t>& prefix) {
    if (prefix != last_prefix_ || last_cache_.empty()) {
      forget_between_batches();
      std::vector<at::Tensor> cache = bundle_.model->run_method(
          prefix_method_, {at::tensor(prefix, at::kLong).unsqueeze(0).to(bundle_.device)});
      check<std::runtime_error>(cache.size() == 2, "{} must return keys and values",
                                prefix_method_);
      last_cache_ = std::move(cache);
      last_prefix_ = prefix;
    }
    return last_cache_;
  }

  // Rows that share their prefix with another row of the batch (passages of one record), or with
  // the last batch's, run it once and their remainders after it in one pass; the other rows run
  // whole, together.
  at::Tensor logits_reusing_prefixes(const std::vector<const Encoding*>& batch,
                                     size_t padded_length) {
    std::map<std::vector<int64_t>, std::vector<size_t>> by_prefix;
    for (size_t i = 0; i < batch.size(); ++i) {
      const Encoding& row = *batch[i];
      if (row.shared_prefix == 0 || row.shared_prefix >= row.size()) continue;
      const auto end = row.ids.begin() + static_cast<std::ptrdiff_t>(row.shared_prefix);
      by_prefix[std::vector<int64_t>(row.ids.begin(), end)].push_back(i);
    }
    at::Tensor logits =
        at::empty({static_cast<int64_t>(batch.size()), score_.columns()}, at::kFloat);
    std::vector<bool> done(batch.size(), false);
    for (const auto& [prefix, rows] : by_prefix) {
      if (rows.size() < 2 && prefix != last_prefix_) continue;
      size_t longest = 0;
      for (size_t row : rows) longest = std::max(longest, batch[row]->size() - prefix.size());
      const auto remainder = static_cast<int64_t>(longest);
      if (remainder * (remainder + static_cast<int64_t>(prefix.size())) > kMaxContinuationMask) {
        continue;
      }
      const std::vector<at::Tensor>& cache = prefix_cache(prefix);
      std::vector<Encoding> remainders(rows.size());
      std::vector<const Encoding*> pointers;
      for (size_t r = 0; r < rows.size(); ++r) {
        const Encoding& row = *batch[rows[r]];
        remainders[r].ids.assign(row.ids.begin() + static_cast<std::ptrdiff_t>(row.shared_prefix),
                                 row.ids.end());
        remainders[r].type_ids.assign(remainders[r].ids.size(), 0);
        pointers.push_back(&remainders[r]);
      }
      const engine::SequenceBatch inputs = engine::make_sequence_batch(
          pointers, longest, bundle_.tokenizer->special_tokens().pad, bundle_.device);
      const at::Tensor part = checked(
          bundle_.model->run_method(continue_method_,
                                    {inputs.input_ids, inputs.attention_mask, cache[0], cache[1]}),
          rows.size());
      for (size_t r = 0; r < rows.size(); ++r) {
        logits[static_cast<int64_t>(rows[r])].copy_(part[static_cast<int64_t>(r)]);
        done[rows[r]] = true;
      }
    }
    std::vector<size_t> whole;
    std::vector<const Encoding*> pointers;
    size_t longest = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (done[i]) continue;
      whole.push_back(i);
      pointers.push_back(batch[i]);
      longest = std::max(longest, batch[i]->size());
    }
    if (!whole.empty()) {
      const size_t length = whole.size() == batch.size() ? padded_length : longest;
      const at::Tensor part =
          checked(engine::forward_sequences(bundle_, pointers, length).outputs, whole.size());
      for (size_t r = 0; r < whole.size(); ++r) {
        logits[static_cast<int64_t>(whole[r])].copy_(part[static_cast<int64_t>(r)]);
      }
    }
    return logits;
  }

  engine::ModelBundle& bundle_;
  RerankTemplate template_;
  ScoreSpec score_;
  std::string instruction_;
  bool reuse_ = false;
  std::string prefix_method_, continue_method_;
  // The last prefix run and its keys and values (one record's), for the record's next batch.
  std::vector<int64_t> last_prefix_;
  std::vector<at::Tensor> last_cache_;
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
  options->prefix_reuse = node.boolean("prefix_reuse", true);
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
