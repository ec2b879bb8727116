#include "models/cross_encoder/pair_encoder.h"

#include <algorithm>

#include "engine/common/error.h"
#include "engine/text/utf8.h"

namespace models::cross_encoder {

using engine::Encoding;

PairEncoder::PairEncoder(const engine::Tokenizer& tokenizer, int max_length,
                         const CrossEncoderOptions& options, const std::string& truncation)
    : tokenizer_(tokenizer),
      max_length_(static_cast<size_t>(max_length)),
      options_(options),
      longest_first_(truncation == "longest_first") {
  engine::check<engine::ConfigError>(
      truncation == "longest_first" || truncation == "query_three_quarters",
      "the manifest's pair_truncation '{}' is not one of query_three_quarters, longest_first",
      truncation);
}

std::pair<size_t, size_t> longest_first_lengths(size_t first, size_t second, size_t budget) {
  if (first + second <= budget) return {first, second};
  // transformers' arithmetic: the difference comes off the longer text, the rest off both, the
  // odd token off the second (off the first when the first is the longer).
  const size_t remove = first + second - budget;
  const size_t difference = first > second ? first - second : second - first;
  const size_t first_remove = std::min(difference, remove);
  const size_t second_remove = remove - first_remove;
  size_t from_first = 0;
  size_t from_second = 0;
  if (first > second) {
    from_first = first_remove + second_remove / 2;
    from_second = second_remove - second_remove / 2;
  } else {
    from_first = second_remove / 2;
    from_second = first_remove + second_remove - second_remove / 2;
  }
  return {first - std::min(first, from_first), second - std::min(second, from_second)};
}

std::vector<Encoding> PairEncoder::encode(std::string_view query, std::string_view passage) const {
  std::string query_text, passage_text;  // copies only when an instruction is added
  const engine::InstructionTemplate& query_instruction = options_.query_instruction;
  const engine::InstructionTemplate& passage_instruction = options_.passage_instruction;
  if (!query_instruction.empty()) query = query_text = query_instruction.apply(query);
  if (!passage_instruction.empty()) passage = passage_text = passage_instruction.apply(passage);
  if (options_.long_passages == LongPassages::kChunkMax) return chunked(query, passage);
  if (longest_first_) return longest_first(query, passage);
  return truncated(query, passage);
}

std::vector<Encoding> PairEncoder::truncated(std::string_view query,
                                             std::string_view passage) const {
  const auto max_length = max_length_;
  const std::vector<int64_t> query_ids = tokenizer_.encode(query, max_length * 3 / 4);
  const size_t room = max_length - tokenizer_.special_token_count(true) - query_ids.size();
  return {tokenizer_.build_pair(query_ids, tokenizer_.encode(passage, room))};
}

std::vector<Encoding> PairEncoder::longest_first(std::string_view first,
                                                 std::string_view second) const {
  // Each side is encoded up to the whole budget only: the kept lengths depend on the full
  // lengths only through their minimum with the budget.
  const size_t budget = max_length_ - tokenizer_.special_token_count(true);
  std::vector<int64_t> first_ids = tokenizer_.encode(first, budget + 1);
  std::vector<int64_t> second_ids = tokenizer_.encode(second, budget + 1);
  const auto [keep_first, keep_second] =
      longest_first_lengths(first_ids.size(), second_ids.size(), budget);
  first_ids.resize(keep_first);
  second_ids.resize(keep_second);
  return {tokenizer_.build_pair(first_ids, second_ids)};
}

std::vector<Encoding> PairEncoder::chunked(std::string_view query, std::string_view passage) const {
  const auto max_length = max_length_;
  const std::vector<int64_t> query_ids = tokenizer_.encode(query, max_length);
  const size_t used = query_ids.size() + tokenizer_.special_token_count(true);
  const size_t window = used < max_length ? max_length - used : 0;
  engine::check<engine::RecordError>(
      window >= kMinimumChunkWindow,
      "the query takes {} of task.max_length {} tokens, leaving {} for passage chunks; chunked "
      "scoring (task.long_passages: chunk_max) needs more than 100",
      query_ids.size(), max_length, window);
  const auto passage_chars = static_cast<size_t>(options_.max_passage_chars);
  const std::vector<int64_t> passage_ids =
      tokenizer_.encode(engine::utf8_prefix(passage, passage_chars));
  if (passage_ids.size() <= window) return {tokenizer_.build_pair(query_ids, passage_ids)};

  const size_t overlap = std::min(static_cast<size_t>(options_.chunk_overlap), window / 4);
  std::vector<Encoding> sequences;
  for (size_t start = 0; start < passage_ids.size();) {
    const size_t end = std::min(start + window, passage_ids.size());
    const std::vector<int64_t> chunk(passage_ids.begin() + static_cast<long>(start),
                                     passage_ids.begin() + static_cast<long>(end));
    sequences.push_back(tokenizer_.build_pair(query_ids, chunk));
    start = end < passage_ids.size() ? end - overlap : end;
  }
  return sequences;
}

}  // namespace models::cross_encoder
