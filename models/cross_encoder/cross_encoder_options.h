// The cross-encoder family's options (model.options), read once when a job is planned.
//
//   label, activation               which logit is the score and what is applied to it
//   query_instruction[_format]      text put before each query / passage (instruction.h)
//   passage_instruction[_format]
//   long_passages                   truncate (FlagReranker) or chunk_max (BCEmbedding's reranker)
//   chunk_overlap                   chunk_max: tokens shared by neighbouring chunks (<= window / 4)
//   max_passage_chars               chunk_max: passages are first cut to this many characters
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "engine/runtime/family_adapter.h"
#include "engine/text/instruction.h"

namespace models::cross_encoder {

// What is done with a passage longer than the window: cut it, or score overlapping chunks and
// keep the best.
enum class LongPassages { kTruncate, kChunkMax };

struct CrossEncoderOptions : engine::FamilyOptions {
  int label = 0;
  std::string activation = "auto";  // auto (raw logit, or sigmoid with task.normalize), none,
                                    // sigmoid, softmax
  engine::InstructionTemplate query_instruction;
  engine::InstructionTemplate passage_instruction;
  LongPassages long_passages = LongPassages::kTruncate;
  int chunk_overlap = 80;
  int64_t max_passage_chars = 128000;

  nlohmann::json settings() const override;
};

// Throws ConfigError naming the key for a bad or unknown one.
std::shared_ptr<const engine::FamilyOptions> read_options(const engine::OptionsContext& context);

}  // namespace models::cross_encoder
