// How a (query, passage) pair becomes the sequences a cross-encoder scores.
//
// truncate (FlagEmbedding's FlagReranker): the query is cut to 3/4 of max_length, the passage to
//   what is left; one sequence "<s> q </s></s> p </s>".
// longest_first (BERT pairs, ModelScope's StructBERT): tokens are taken from the end of the
//   longer text until the pair fits, as transformers' "longest_first" truncation does.
// chunk_max (BCEmbedding's RerankerModel): the query is kept whole; a passage longer than the
//   window (max_length - query - special tokens) is cut into windows that overlap by
//   min(chunk_overlap, window / 4) tokens, one sequence each; the pair's score is the best one's.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/text/tokenizer.h"
#include "models/cross_encoder/cross_encoder_options.h"

namespace models::cross_encoder {

class PairEncoder {
 public:
  // Sequences of at most `max_length` tokens (task.max_length). `truncation` is the manifest's
  // pair_truncation: "query_three_quarters" (FlagReranker) or "longest_first"; long_passages
  // chunk_max overrides both. Throws ConfigError for another truncation.
  PairEncoder(const engine::Tokenizer& tokenizer, int max_length,
              const CrossEncoderOptions& options, const std::string& truncation);

  // Throws RecordError when a chunked pair's query leaves no room for its passage.
  std::vector<engine::Encoding> encode(std::string_view query, std::string_view passage) const;

 private:
  std::vector<engine::Encoding> truncated(std::string_view query, std::string_view passage) const;
  std::vector<engine::Encoding> chunked(std::string_view query, std::string_view passage) const;
  std::vector<engine::Encoding> longest_first(std::string_view first,
                                              std::string_view second) const;

  const engine::Tokenizer& tokenizer_;
  size_t max_length_;
  CrossEncoderOptions options_;
  bool longest_first_ = false;
};

// How many tokens of each text transformers' longest_first truncation keeps so that the pair
// fits `budget` tokens (special tokens excluded).
std::pair<size_t, size_t> longest_first_lengths(size_t first, size_t second, size_t budget);

// BCEmbedding refuses a query that leaves a window of 100 tokens or less.
constexpr size_t kMinimumChunkWindow = 101;

}  // namespace models::cross_encoder
