#include "models/bge_m3/bge_m3_adapter.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>

#include "engine/common/error.h"
#include "engine/runtime/sequence_batch.h"
#include "engine/runtime/text_embedding_adapter.h"
#include "models/bge_m3/m3_scores.h"

namespace models::bge_m3 {
namespace {

using engine::check;
using engine::ConfigError;
using engine::SequenceResult;
using engine::TaskKind;

enum class Mode { kDense, kSparse, kColbert, kCombined };
const char* const kModes[] = {"dense", "sparse", "colbert", "combined"};

struct Wanted {
  bool dense = false;
  bool sparse = false;
  bool colbert = false;
};

// model.options: outputs (embed), mode and weights (rerank, score), sparse_tokens.
struct BgeM3Options : engine::FamilyOptions {
  std::vector<std::string> outputs = {"dense"};
  Mode mode = Mode::kDense;
  std::vector<float> weights = {0.4f, 0.2f, 0.4f};
  bool sparse_tokens = false;
  Wanted wanted;  // what the model's outputs must give, from the task and the options above

  nlohmann::json settings() const override {
    return {{"outputs", outputs},
            {"mode", kModes[static_cast<int>(mode)]},
            {"weights", weights},
            {"sparse_tokens", sparse_tokens}};
  }
};

class BgeM3Adapter : public engine::TextEmbeddingAdapter {
 public:
  explicit BgeM3Adapter(const engine::AdapterContext& context)
      : TextEmbeddingAdapter(context.bundle, context.task) {
    const auto& manifest = bundle_.manifest;
    // FlagEmbedding leaves the <s>, </s>, <pad> and <unk> weights out of lexical weights.
    try {
      for (int64_t id :
           manifest.document.value("sparse_skip_ids", std::vector<int64_t>{0, 1, 2, 3})) {
        skip_ids_.insert(id);
      }
    } catch (const nlohmann::json::exception&) {
      throw ConfigError(manifest.directory + "/engine.json: sparse_skip_ids must be a list of ids");
    }
    const auto& options = engine::family_options<BgeM3Options>(context);
    wanted_ = options.wanted;
    mode_ = options.mode;
    weights_ = options.weights;
    sparse_tokens_ = options.sparse_tokens;
  }

  std::vector<SequenceResult> run(const std::vector<const engine::Encoding*>& batch,
                                  size_t padded_length) override;

  float pair_score(const engine::PlannedSequence& query_plan, const SequenceResult& query,
                   const engine::PlannedSequence& passage_plan,
                   const SequenceResult& passage) const override;
  engine::Embedding embedding(const engine::PlannedSequence& planned,
                              const SequenceResult& result) const override;

  std::string describe() const override {
    if (task_.kind == TaskKind::kEmbed) {
      return fmt::format("bge-m3 embeddings:{}{}{}", wanted_.dense ? " dense" : "",
                         wanted_.sparse ? " sparse" : "", wanted_.colbert ? " colbert" : "");
    }
    return fmt::format("bge-m3 {} score, weights dense {} sparse {} colbert {}",
                       kModes[static_cast<int>(mode_)], weights_[0], weights_[1], weights_[2]);
  }

 private:
  LexicalWeights lexical(const engine::PlannedSequence& planned,
                         const SequenceResult& result) const {
    return lexical_weights(planned.encoding.ids, result.token_weights.data(), skip_ids_);
  }

  std::unordered_set<int64_t> skip_ids_;
  Wanted wanted_;
  Mode mode_ = Mode::kDense;
  std::vector<float> weights_ = {0.4f, 0.2f, 0.4f};
  bool sparse_tokens_ = false;
};

}  // namespace

std::shared_ptr<const engine::FamilyOptions> read_options(const engine::OptionsContext& context) {
  const engine::ConfigNode& node = context.options;
  auto options = std::make_shared<BgeM3Options>();
  options->outputs = node.strings("outputs", std::vector<std::string>{"dense"});
  for (const std::string& output : options->outputs) {
    check<ConfigError>(output == "dense" || output == "sparse" || output == "colbert",
                       "{}: '{}' is not one of dense, sparse, colbert", node.where("outputs"),
                       output);
  }
  const auto has = [&](const char* name) {
    return std::find(options->outputs.begin(), options->outputs.end(), name) !=
           options->outputs.end();
  };
  const std::string mode = node.choice("mode", {"dense", "sparse", "colbert", "combined"}, "dense");
  options->mode = mode == "dense"     ? Mode::kDense
                  : mode == "sparse"  ? Mode::kSparse
                  : mode == "colbert" ? Mode::kColbert
                                      : Mode::kCombined;
  const auto weights = node.strings("weights", std::vector<std::string>{"0.4", "0.2", "0.4"});
  check<ConfigError>(weights.size() == 3, "{}: expected three weights (dense, sparse, colbert)",
                     node.where("weights"));
  for (size_t i = 0; i < 3; ++i) {
    try {
      options->weights[i] = std::stof(weights[i]);
    } catch (const std::exception&) {
      throw ConfigError(fmt::format("{}: '{}' is not a number", node.where("weights"), weights[i]));
    }
  }
  options->sparse_tokens = node.boolean("sparse_tokens", false);
  node.reject_unknown_keys();
  const Mode chosen = options->mode;
  if (context.task.kind == TaskKind::kEmbed) {
    options->wanted = {has("dense"), has("sparse"), has("colbert")};
  } else {
    options->wanted = {chosen == Mode::kDense || chosen == Mode::kCombined,
                       chosen == Mode::kSparse || chosen == Mode::kCombined,
                       chosen == Mode::kColbert || chosen == Mode::kCombined};
  }
  return options;
}

namespace {

std::vector<SequenceResult> BgeM3Adapter::run(const std::vector<const engine::Encoding*>& batch,
                                              size_t padded_length) {
  c10::InferenceMode inference;
  const std::vector<at::Tensor> outputs =
      engine::forward_sequences(bundle_, batch, padded_length).outputs;
  check<std::runtime_error>(outputs.size() == 3,
                            "the bge-m3 model returned {} outputs; expected dense, token_weights "
                            "and colbert",
                            outputs.size());
  const auto to_host = [](const at::Tensor& tensor) {
    return tensor.to(at::kCPU, at::kFloat).contiguous();
  };
  const at::Tensor dense = to_host(outputs[0]);
  const at::Tensor weights = wanted_.sparse ? to_host(outputs[1]) : at::Tensor();
  const at::Tensor colbert = wanted_.colbert ? to_host(outputs[2]) : at::Tensor();
  const int64_t hidden = dense.size(1);
  std::vector<SequenceResult> results(batch.size());
  for (size_t row = 0; row < batch.size(); ++row) {
    const auto b = static_cast<int64_t>(row);
    const auto length = static_cast<int64_t>(batch[row]->size());
    SequenceResult& result = results[row];
    const float* dense_row = dense[b].data_ptr<float>();
    result.vector.assign(dense_row, dense_row + hidden);
    if (wanted_.sparse) {
      const float* weight_row = weights[b].data_ptr<float>();
      result.token_weights.assign(weight_row, weight_row + length);
    }
    if (wanted_.colbert) {
      // ColBERT vectors are those of the tokens after <s>: length - 1 rows, </s> included.
      const float* vectors = colbert[b].data_ptr<float>();
      result.token_vectors.assign(vectors, vectors + (length - 1) * hidden);
    }
  }
  return results;
}

float BgeM3Adapter::pair_score(const engine::PlannedSequence& query_plan,
                               const SequenceResult& query,
                               const engine::PlannedSequence& passage_plan,
                               const SequenceResult& passage) const {
  const auto hidden = query.vector.size();
  const auto dense = [&] { return dense_score(query.vector, passage.vector); };
  const auto sparse = [&] {
    return lexical_score(lexical(query_plan, query), lexical(passage_plan, passage));
  };
  const auto colbert = [&] {
    return colbert_score(query.token_vectors, passage.token_vectors, hidden);
  };
  switch (mode_) {
    case Mode::kDense:
      return dense();
    case Mode::kSparse:
      return sparse();
    case Mode::kColbert:
      return colbert();
    case Mode::kCombined:
      break;
  }
  const float total = weights_[0] + weights_[1] + weights_[2];
  return (weights_[2] * colbert() + weights_[1] * sparse() + weights_[0] * dense()) / total;
}

engine::Embedding BgeM3Adapter::embedding(const engine::PlannedSequence& planned,
                                          const SequenceResult& result) const {
  engine::Embedding embedding;
  if (wanted_.dense) embedding.dense = result.vector;
  if (wanted_.sparse) {
    engine::SparseVector& sparse = embedding.sparse.emplace();
    for (const auto& [id, weight] : lexical(planned, result)) {
      sparse.ids.push_back(id);
      sparse.weights.push_back(weight);
      if (sparse_tokens_) sparse.tokens.push_back(bundle_.tokenizer->id_to_piece(id));
    }
  }
  if (wanted_.colbert) {
    auto& rows = embedding.multi_vector.emplace();
    const auto hidden = static_cast<long>(result.vector.size());
    for (auto start = result.token_vectors.begin(); start != result.token_vectors.end();
         start += hidden) {
      rows.emplace_back(start, start + hidden);
    }
  }
  return embedding;
}

}  // namespace

std::unique_ptr<engine::FamilyAdapter> make_adapter(const engine::AdapterContext& context) {
  return std::make_unique<BgeM3Adapter>(context);
}

}  // namespace models::bge_m3
