// How a (query, passage) pair becomes the sequences a cross-encoder scores.
//
// truncate (FlagEmbedding's FlagReranker): the query is cut to 3/4 of max_length, the passage to
//   what is left; one sequence "<s> q </s></s> p </s>".
// chunk_max (BCEmbedding's RerankerModel): the query is kept whole; a passage longer than the
//   window (max_length - query - special tokens) is cut into windows that overlap by
//   min(chunk_overlap, window / 4) tokens, one sequence each; the pair's score is the best one's.
#pragma once

#include <string_view>
#include <vector>

#include "engine/config/config.h"
#include "engine/text/instruction.h"
#include "engine/text/tokenizer.h"

namespace models::cross_encoder {

class PairEncoder {
 public:
  // Reads the instruction options; throws ConfigError for bad ones.
  PairEncoder(const engine::Tokenizer& tokenizer, const engine::TaskConfig& task,
              const engine::ConfigNode& options);

  // Throws RecordError when a chunked pair's query leaves no room for its passage.
  std::vector<engine::Encoding> encode(std::string_view query, std::string_view passage) const;

 private:
  std::vector<engine::Encoding> truncated(std::string_view query, std::string_view passage) const;
  std::vector<engine::Encoding> chunked(std::string_view query, std::string_view passage) const;

  const engine::Tokenizer& tokenizer_;
  const engine::TaskConfig& task_;
  engine::InstructionTemplate query_instruction_;
  engine::InstructionTemplate passage_instruction_;
};

// BCEmbedding refuses a query that leaves a window of 100 tokens or less.
constexpr size_t kMinimumChunkWindow = 101;

}  // namespace models::cross_encoder
