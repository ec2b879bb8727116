// Padding a batch of token sequences into the model's input tensors.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "engine/text/tokenizer.h"

namespace engine {

struct SequenceBatch {
  at::Tensor input_ids;       // int64 [B, L], right-padded with the pad id
  at::Tensor attention_mask;  // int64 [B, L], 1 on real tokens
  at::Tensor token_type_ids;  // int64 [B, L]
};

SequenceBatch make_sequence_batch(const std::vector<const Encoding*>& sequences,
                                  size_t padded_length, int64_t pad_id, c10::Device device);

struct ModelBundle;

struct ForwardPass {
  SequenceBatch inputs;
  std::vector<at::Tensor> outputs;
};

// Pads `sequences` and runs the bundle's model on the inputs its manifest names, in that order
// (input_ids, attention_mask, token_type_ids). Throws ConfigError for an input it cannot make.
ForwardPass forward_sequences(const ModelBundle& bundle, const std::vector<const Encoding*>& sequences,
                              size_t padded_length);

}  // namespace engine
