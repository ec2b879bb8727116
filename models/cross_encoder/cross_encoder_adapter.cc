#include "models/cross_encoder/cross_encoder_adapter.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <c10/util/StringUtil.h>
#include <fmt/format.h>

#include "engine/common/error.h"
#include "engine/runtime/pair_scoring_adapter.h"
#include "engine/runtime/sequence_batch.h"
#include "models/cross_encoder/pair_encoder.h"

namespace models::cross_encoder {
namespace {

using engine::check;
using engine::ConfigError;
using engine::Encoding;

class CrossEncoderAdapter : public engine::PairScoringAdapter {
 public:
  explicit CrossEncoderAdapter(const engine::AdapterContext& context)
      : PairScoringAdapter(context.task),
        bundle_(context.bundle),
        options_(engine::family_options<CrossEncoderOptions>(context)),
        pairs_(*context.bundle.tokenizer, context.task.max_length, options_,
               context.bundle.manifest.document.value("pair_truncation",
                                                      std::string("query_three_quarters"))) {
    const auto& manifest = bundle_.manifest;
    num_labels_ = manifest.architecture.value("num_labels", 1);
    label_ = options_.label;
    check<ConfigError>(label_ < num_labels_,
                       "model.options.label is {} but the model has {} labels", label_,
                       num_labels_);
    // auto: the activation the bundle names (a CrossEncoder directory's, as its predict()
    // applies it), else FlagReranker's convention: the raw logit, or its sigmoid with
    // task.normalize.
    activation_ = options_.activation;
    if (activation_ == "auto") {
      activation_ = manifest.document.value("activation", task_.normalize ? "sigmoid" : "none");
      check<ConfigError>(
          activation_ == "none" || activation_ == "sigmoid" || activation_ == "softmax",
          "{}/engine.json: activation '{}' is not one of none, sigmoid, softmax",
          manifest.directory, activation_);
    }
    check<ConfigError>(task_.max_length <= manifest.max_positions,
                       "task.max_length is {} but the model has {} positions; set "
                       "task.max_length to at most {}",
                       task_.max_length, manifest.max_positions, manifest.max_positions);
  }

  std::vector<Encoding> encode_pair(std::string_view query, std::string_view passage,
                                    const std::optional<std::string>&) const override {
    return pairs_.encode(query, passage);
  }

  std::vector<engine::SequenceResult> run(const std::vector<const Encoding*>& batch,
                                          size_t padded_length) override {
    c10::InferenceMode inference;
    const std::vector<at::Tensor> outputs =
        engine::forward_sequences(bundle_, batch, padded_length).outputs;
    check<std::runtime_error>(
        !outputs.empty() && outputs[0].dim() == 2 && outputs[0].size(1) == num_labels_,
        "the model returned logits of shape {}; expected [batch, {}]",
        outputs.empty() ? std::string("nothing") : c10::str(outputs[0].sizes()), num_labels_);
    at::Tensor logits = outputs[0].to(at::kFloat);
    if (activation_ == "softmax") logits = at::softmax(logits, 1);
    return results_from_scores(logits.select(1, label_), activation_ == "sigmoid");
  }

  std::string describe() const override {
    return fmt::format("cross-encoder: label {} of {} ({}), long passages {}", label_, num_labels_,
                       activation_ == "none" ? "raw logit" : activation_,
                       options_.long_passages == LongPassages::kChunkMax
                           ? "scored in overlapping chunks, best chunk kept"
                           : "truncated");
  }

 private:
  engine::ModelBundle& bundle_;
  CrossEncoderOptions options_;
  int64_t num_labels_ = 1;
  int label_ = 0;
  PairEncoder pairs_;
  std::string activation_;  // none, sigmoid or softmax
};

}  // namespace

std::unique_ptr<engine::FamilyAdapter> make_adapter(const engine::AdapterContext& context) {
  return std::make_unique<CrossEncoderAdapter>(context);
}

}  // namespace models::cross_encoder
