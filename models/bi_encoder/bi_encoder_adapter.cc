#include "models/bi_encoder/bi_encoder_adapter.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "engine/common/error.h"
#include "engine/runtime/sequence_batch.h"

namespace models::bi_encoder {
namespace {

using engine::check;
using engine::ConfigError;
using engine::OutputRecord;
using engine::SequenceResult;
using engine::TaskKind;

constexpr int kQuerySlot = -1;
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

class BiEncoderAdapter : public engine::FamilyAdapter {
 public:
  explicit BiEncoderAdapter(const engine::AdapterContext& context)
      : bundle_(context.bundle), task_(context.task) {
    const auto& manifest = bundle_.manifest;
    check<ConfigError>(task_.max_length <= manifest.max_positions,
                       "task.max_length is {} but the model has {} positions", task_.max_length,
                       manifest.max_positions);
    const std::string pooling = manifest.document.value("pooling", std::string("mean"));
    check<ConfigError>(pooling == "mean", "{}/engine.json: pooling '{}' is not supported; mean is",
                       manifest.directory, pooling);
    context.options.reject_unknown_keys();
  }

  bool serves(TaskKind) const override { return true; }

  std::vector<engine::PlannedSequence> plan(const engine::TaskRecord& record) const override {
    std::vector<engine::PlannedSequence> sequences;
    sequences.push_back({encode(record.query), kQuerySlot});
    for (size_t i = 0; i < record.passages.size(); ++i) {
      sequences.push_back({encode(record.passages[i].text), static_cast<int>(i)});
    }
    return sequences;
  }

  std::vector<SequenceResult> run(const std::vector<const engine::Encoding*>& batch,
                                  size_t padded_length) override {
    c10::InferenceMode inference;
    const int64_t pad = bundle_.tokenizer->special_tokens().pad;
    engine::SequenceBatch inputs =
        engine::make_sequence_batch(batch, padded_length, pad, bundle_.device);
    std::vector<at::Tensor> outputs = bundle_.model->forward(
        {inputs.input_ids, inputs.attention_mask, inputs.token_type_ids});
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

  OutputRecord finish(const engine::TaskRecord& record,
                      const std::vector<engine::PlannedSequence>& plan,
                      const std::vector<SequenceResult>& results) const override {
    if (task_.kind == TaskKind::kEmbed) {
      OutputRecord output = OutputRecord::object();
      if (!record.id.is_null()) output["id"] = engine::output_id(record.id);
      output["dense"] = results[0].vector;
      return output;
    }
    std::vector<float> scores(record.passages.size());
    for (size_t i = 1; i < plan.size(); ++i) {
      scores[static_cast<size_t>(plan[i].slot)] = cosine(results[0].vector, results[i].vector);
    }
    if (task_.kind == TaskKind::kScore) return engine::score_output(record, scores.front());
    return engine::rerank_output(record, scores, task_.top_k);
  }

  std::string describe() const override {
    return "bi-encoder: mean of the last hidden states, cosine similarity";
  }

 private:
  engine::Encoding encode(std::string_view text) const {
    const engine::Tokenizer& tokenizer = *bundle_.tokenizer;
    const size_t room =
        static_cast<size_t>(task_.max_length) - tokenizer.special_token_count(false);
    return tokenizer.build_single(tokenizer.encode(text, room));
  }

  engine::ModelBundle& bundle_;
  const engine::TaskConfig& task_;
};

}  // namespace

std::unique_ptr<engine::FamilyAdapter> make_adapter(const engine::AdapterContext& context) {
  return std::make_unique<BiEncoderAdapter>(context);
}

}  // namespace models::bi_encoder
