#include "models/cross_encoder/pair_encoder.h"

#include <algorithm>

#include "engine/common/error.h"
#include "engine/text/utf8.h"

namespace models::cross_encoder {

using engine::Encoding;

PairEncoder::PairEncoder(const engine::Tokenizer& tokenizer, const engine::TaskConfig& task,
                         const engine::ConfigNode& options)
    : tokenizer_(tokenizer),
      task_(task),
      query_instruction_(options, "query"),
      passage_instruction_(options, "passage") {}

std::vector<Encoding> PairEncoder::encode(std::string_view query, std::string_view passage) const {
  std::string query_text, passage_text;  // copies only when an instruction is added
  if (!query_instruction_.empty()) query = query_text = query_instruction_.apply(query);
  if (!passage_instruction_.empty()) passage = passage_text = passage_instruction_.apply(passage);
  if (task_.long_passages == engine::LongPassages::kChunkMax) return chunked(query, passage);
  return truncated(query, passage);
}

std::vector<Encoding> PairEncoder::truncated(std::string_view query,
                                             std::string_view passage) const {
  const auto max_length = static_cast<size_t>(task_.max_length);
  const std::vector<int64_t> query_ids = tokenizer_.encode(query, max_length * 3 / 4);
  const size_t room = max_length - tokenizer_.special_token_count(true) - query_ids.size();
  return {tokenizer_.build_pair(query_ids, tokenizer_.encode(passage, room))};
}

std::vector<Encoding> PairEncoder::chunked(std::string_view query,
                                           std::string_view passage) const {
  const auto max_length = static_cast<size_t>(task_.max_length);
  const std::vector<int64_t> query_ids = tokenizer_.encode(query, max_length);
  const size_t used = query_ids.size() + tokenizer_.special_token_count(true);
  const size_t window = used < max_length ? max_length - used : 0;
  engine::check<engine::RecordError>(
      window >= kMinimumChunkWindow,
      "the query takes {} of task.max_length {} tokens, leaving {} for passage chunks; chunked "
      "scoring (task.long_passages: chunk_max) needs more than 100",
      query_ids.size(), max_length, window);
  const auto passage_chars = static_cast<size_t>(task_.max_passage_chars);
  const std::vector<int64_t> passage_ids =
      tokenizer_.encode(engine::utf8_prefix(passage, passage_chars));
  if (passage_ids.size() <= window) return {tokenizer_.build_pair(query_ids, passage_ids)};

  const size_t overlap = std::min(static_cast<size_t>(task_.chunk_overlap), window / 4);
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
