#include "models/bi_encoder/bi_encoder_adapter.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "engine/common/error.h"
#include "engine/config/config_node.h"
#include "engine/runtime/sequence_batch.h"
#include "engine/runtime/text_embedding_adapter.h"

namespace models::bi_encoder {
namespace {

using engine::check;
using engine::ConfigError;
using engine::SequenceResult;

// PyTorch's cosine_similarity clamps each norm at this.
constexpr double kNormEpsilon = 1e-8;

// Cosine as torch.nn.functional.cosine_similarity computes it, accumulated in double.
float cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, norm_a = 0, norm_b = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    norm_a += static_cast<double>(a[i]) * a[i];
    norm_b += static_cast<double>(b[i]) * b[i];
  }
  return static_cast<float>(dot / (std::max(std::sqrt(norm_a), kNormEpsilon) *
                                   std::max(std::sqrt(norm_b), kNormEpsilon)));
}

float dot(const std::vector<float>& a, const std::vector<float>& b) {
  double sum = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) sum += static_cast<double>(a[i]) * b[i];
  return static_cast<float>(sum);
}

// model.options: the prompt (a name from the bundle's prompts, or none) before queries, before
// passages, and before an embed record's text.
struct BiEncoderOptions : engine::FamilyOptions {
  std::string query_prompt;  // the prompts' texts, resolved from their names
  std::string passage_prompt;
  std::string embed_prompt;
  std::map<std::string, std::string> prompts;  // the bundle's, by name, for records' prompt_name

  nlohmann::json settings() const override {
    return {{"query_prompt", query_prompt},
            {"passage_prompt", passage_prompt},
            {"prompt", embed_prompt}};
  }
};

// The bundle's prompts by name (sentence-transformers' config_sentence_transformers.json).
std::map<std::string, std::string> bundle_prompts(const engine::Manifest& manifest) {
  std::map<std::string, std::string> prompts;
  const auto found = manifest.document.find("prompts");
  if (found == manifest.document.end()) return prompts;
  check<ConfigError>(found->is_object(), "{}/engine.json: prompts must be an object of strings",
                     manifest.directory);
  for (const auto& [name, text] : found->items()) {
    check<ConfigError>(text.is_string(), "{}/engine.json: prompt '{}' must be a string",
                       manifest.directory, name);
    prompts[name] = text.get<std::string>();
  }
  return prompts;
}

std::string prompt_names(const std::map<std::string, std::string>& prompts) {
  std::string known;
  for (const auto& entry : prompts) known += (known.empty() ? "" : ", ") + entry.first;
  return known.empty() ? "none" : known;
}

// The text of the prompt `key` names: a name among `prompts`, or none; by default the first of
// `defaults` the bundle has.
std::string prompt_text(const engine::ConfigNode& node, const std::string& key,
                        const std::map<std::string, std::string>& prompts,
                        const std::vector<std::string>& defaults) {
  std::string fallback = "none";
  for (const std::string& name : defaults) {
    if (prompts.count(name)) {
      fallback = name;
      break;
    }
  }
  const std::string name = node.string(key, fallback);
  if (name == "none") return "";
  const auto found = prompts.find(name);
  if (found == prompts.end()) {
    std::string known;
    for (const auto& entry : prompts) known += (known.empty() ? "" : ", ") + entry.first;
    throw ConfigError(
        fmt::format("{}: '{}' is not a prompt of this bundle (its prompts: {}); "
                    "name one of them, or none",
                    node.where(key), name, known.empty() ? "none" : known));
  }
  return found->second;
}

class BiEncoderAdapter : public engine::TextEmbeddingAdapter {
 public:
  explicit BiEncoderAdapter(const engine::AdapterContext& context)
      : TextEmbeddingAdapter(context.bundle, context.task) {
    const auto& manifest = bundle_.manifest;
    pooling_ = manifest.document.value("pooling", std::string("mean"));
    check<ConfigError>(pooling_ == "mean" || pooling_ == "graph",
                       "{}/engine.json: pooling '{}' is not supported; mean (over the last hidden "
                       "states) or graph (the model returns sentence embeddings) are",
                       manifest.directory, pooling_);
    const std::string similarity = manifest.document.value("similarity", std::string("cosine"));
    check<ConfigError>(similarity == "cosine" || similarity == "dot",
                       "{}/engine.json: similarity '{}' is not supported; cosine or dot are",
                       manifest.directory, similarity);
    dot_similarity_ = similarity == "dot";
    const auto& options = engine::family_options<BiEncoderOptions>(context);
    query_prompt_ =
        task_.kind == engine::TaskKind::kEmbed ? options.embed_prompt : options.query_prompt;
    passage_prompt_ = options.passage_prompt;
    prompts_ = options.prompts;
  }

  std::string prompt_named(const std::string& name) const override {
    if (name == "none") return "";
    const auto found = prompts_.find(name);
    if (found == prompts_.end()) {
      throw engine::RecordError(fmt::format(
          "\"prompt_name\" is '{}', not a prompt of this model (its prompts: {}; or none)", name,
          prompt_names(prompts_)));
    }
    return found->second;
  }

  std::vector<SequenceResult> run(const std::vector<const engine::Encoding*>& batch,
                                  size_t padded_length) override {
    c10::InferenceMode inference;
    const auto [inputs, outputs] = engine::forward_sequences(bundle_, batch, padded_length);
    at::Tensor pooled;
    if (pooling_ == "graph") {
      check<std::runtime_error>(!outputs.empty() && outputs[0].dim() == 2,
                                "the embedder returned no [batch, dimension] sentence embeddings");
      pooled = outputs[0].to(at::kCPU, at::kFloat).contiguous();
    } else {
      check<std::runtime_error>(!outputs.empty() && outputs[0].dim() == 3,
                                "the bi-encoder returned no [batch, length, hidden] states");
      // Mean over the real tokens, as sentence-transformers and ModelScope pool.
      const at::Tensor mask = inputs.attention_mask.unsqueeze(-1).to(at::kFloat);
      const at::Tensor hidden = outputs[0].to(at::kFloat);
      pooled = ((hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)).to(at::kCPU).contiguous();
    }
    std::vector<SequenceResult> results(batch.size());
    const int64_t width = pooled.size(1);
    for (size_t row = 0; row < results.size(); ++row) {
      const float* data = pooled[static_cast<int64_t>(row)].data_ptr<float>();
      results[row].vector.assign(data, data + width);
    }
    return results;
  }

  float pair_score(const engine::PlannedSequence&, const SequenceResult& query,
                   const engine::PlannedSequence&, const SequenceResult& passage) const override {
    return dot_similarity_ ? dot(query.vector, passage.vector)
                           : cosine(query.vector, passage.vector);
  }

  engine::Embedding embedding(const engine::PlannedSequence&,
                              const SequenceResult& result) const override {
    engine::Embedding embedding;
    embedding.dense = result.vector;
    return embedding;
  }

  std::string describe() const override {
    return fmt::format("bi-encoder: {}, {} similarity{}",
                       pooling_ == "graph" ? "sentence embeddings from the graph"
                                           : "mean of the last hidden states",
                       dot_similarity_ ? "dot" : "cosine",
                       query_prompt_.empty() && passage_prompt_.empty() ? "" : ", with prompts");
  }

 private:
  std::string pooling_;
  bool dot_similarity_ = false;
  std::map<std::string, std::string> prompts_;
};

}  // namespace

std::shared_ptr<const engine::FamilyOptions> read_options(const engine::OptionsContext& context) {
  const engine::ConfigNode& node = context.options;
  auto options = std::make_shared<BiEncoderOptions>();
  options->prompts = bundle_prompts(context.manifest);
  const auto& prompts = options->prompts;
  options->query_prompt = prompt_text(node, "query_prompt", prompts, {"query"});
  options->passage_prompt = prompt_text(node, "passage_prompt", prompts, {"passage", "document"});
  options->embed_prompt = prompt_text(node, "prompt", prompts,
                                      {context.manifest.document.value("default_prompt_name", "")});
  node.reject_unknown_keys();
  return options;
}

std::unique_ptr<engine::FamilyAdapter> make_adapter(const engine::AdapterContext& context) {
  return std::make_unique<BiEncoderAdapter>(context);
}

}  // namespace models::bi_encoder
