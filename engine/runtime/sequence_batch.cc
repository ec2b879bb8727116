#include "engine/runtime/sequence_batch.h"

#include <algorithm>

#include <ATen/ATen.h>

#include "engine/common/error.h"
#include "engine/runtime/model_bundle.h"

namespace engine {

SequenceBatch make_sequence_batch(const std::vector<const Encoding*>& sequences,
                                  size_t padded_length, int64_t pad_id, c10::Device device) {
  const auto rows = static_cast<int64_t>(sequences.size());
  const auto columns = static_cast<int64_t>(padded_length);
  at::Tensor ids = at::full({rows, columns}, pad_id, at::kLong);
  at::Tensor mask = at::zeros({rows, columns}, at::kLong);
  at::Tensor types = at::zeros({rows, columns}, at::kLong);
  auto ids_view = ids.accessor<int64_t, 2>();
  auto mask_view = mask.accessor<int64_t, 2>();
  auto types_view = types.accessor<int64_t, 2>();
  for (int64_t row = 0; row < rows; ++row) {
    const Encoding& sequence = *sequences[static_cast<size_t>(row)];
    check<std::logic_error>(sequence.size() <= padded_length,
                            "sequence of {} tokens does not fit a batch padded to {}",
                            sequence.size(), padded_length);
    for (size_t column = 0; column < sequence.size(); ++column) {
      const auto c = static_cast<int64_t>(column);
      ids_view[row][c] = sequence.ids[column];
      mask_view[row][c] = 1;
      types_view[row][c] = column < sequence.type_ids.size() ? sequence.type_ids[column] : 0;
    }
  }
  if (device.is_cpu()) return {ids, mask, types};
  return {ids.to(device, /*non_blocking=*/true), mask.to(device, true), types.to(device, true)};
}

ForwardPass forward_sequences(const ModelBundle& bundle, const std::vector<const Encoding*>& sequences,
                              size_t padded_length) {
  SequenceBatch batch = make_sequence_batch(
      sequences, padded_length, bundle.tokenizer->special_tokens().pad, bundle.device);
  std::vector<at::Tensor> inputs;
  for (const std::string& name : bundle.manifest.inputs) {
    if (name == "input_ids") {
      inputs.push_back(batch.input_ids);
    } else if (name == "attention_mask") {
      inputs.push_back(batch.attention_mask);
    } else if (name == "token_type_ids") {
      inputs.push_back(batch.token_type_ids);
    } else {
      throw ConfigError(fmt::format("{}/engine.json: model input '{}' is not one the engine makes "
                                    "(input_ids, attention_mask, token_type_ids)",
                                    bundle.manifest.directory, name));
    }
  }
  std::vector<at::Tensor> outputs = bundle.model->forward(inputs);
  return {std::move(batch), std::move(outputs)};
}

}  // namespace engine
