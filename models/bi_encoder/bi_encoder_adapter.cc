#include "models/bi_encoder/bi_encoder_adapter.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "engine/common/error.h"
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

// The bi-encoder has no options of its own.
struct BiEncoderOptions : engine::FamilyOptions {
  nlohmann::json settings() const override { return nlohmann::json::object(); }
};

class BiEncoderAdapter : public engine::TextEmbeddingAdapter {
 public:
  explicit BiEncoderAdapter(const engine::AdapterContext& context)
      : TextEmbeddingAdapter(context.bundle, context.task) {
    const auto& manifest = bundle_.manifest;
    const std::string pooling = manifest.document.value("pooling", std::string("mean"));
    check<ConfigError>(pooling == "mean", "{}/engine.json: pooling '{}' is not supported; mean is",
                       manifest.directory, pooling);
  }

  std::vector<SequenceResult> run(const std::vector<const engine::Encoding*>& batch,
                                  size_t padded_length) override {
    c10::InferenceMode inference;
    const auto [inputs, outputs] = engine::forward_sequences(bundle_, batch, padded_length);
    check<std::runtime_error>(!outputs.empty() && outputs[0].dim() == 3,
                              "the bi-encoder returned no [batch, length, hidden] states");
    // Mean over the real tokens, as sentence-transformers and ModelScope pool.
    const at::Tensor mask = inputs.attention_mask.unsqueeze(-1).to(at::kFloat);
    const at::Tensor hidden = outputs[0].to(at::kFloat);
    const at::Tensor pooled =
        ((hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)).to(at::kCPU).contiguous();
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
    return cosine(query.vector, passage.vector);
  }

  engine::Embedding embedding(const engine::PlannedSequence&,
                              const SequenceResult& result) const override {
    engine::Embedding embedding;
    embedding.dense = result.vector;
    return embedding;
  }

  std::string describe() const override {
    return "bi-encoder: mean of the last hidden states, cosine similarity";
  }
};

}  // namespace

std::shared_ptr<const engine::FamilyOptions> read_options(const engine::OptionsContext& context) {
  context.options.reject_unknown_keys();
  return std::make_shared<BiEncoderOptions>();
}

std::unique_ptr<engine::FamilyAdapter> make_adapter(const engine::AdapterContext& context) {
  return std::make_unique<BiEncoderAdapter>(context);
}

}  // namespace models::bi_encoder
