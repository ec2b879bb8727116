// The JSONL record shapes of the rerank and score tasks (docs/records.md), in and out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/config/config.h"
#include "engine/io/record_result.h"

namespace engine {

struct PassageInput {
  std::string text;
  nlohmann::json id;  // null when the passage was a bare string
};

// A parsed input record: a query with its passages. A score record is a query with one passage;
// an embed record is its text in `query`, without passages.
struct TaskRecord {
  nlohmann::json id;  // null when the record has none
  std::string query;
  std::vector<PassageInput> passages;
  // embed: the prompt this record's text gets, by name ("prompt_name"); empty: the task's.
  std::string prompt_name;
  // rerank and score: the instruction this record's pairs get ("instruction"), for models whose
  // pairs have one (LLM rerankers); unset: the job's.
  std::optional<std::string> instruction;
};

// Parses one input line. Throws RecordError saying which field is wrong and how; `id` is set as
// soon as the record's id is known, so that an error record can carry it.
TaskRecord parse_record(const std::string& line, TaskKind kind, nlohmann::json& id);

// Output records keep their keys in the order written, and hold scores as float32, so that they
// print as the shortest decimal that reads back as the same float.
using OutputRecord = nlohmann::basic_json<nlohmann::ordered_map, std::vector, std::string, bool,
                                          std::int64_t, std::uint64_t, float>;

// {"line", "id"?, "error"}
OutputRecord error_record(int64_t line, const nlohmann::json& id, const std::string& message);

// The output line of a record's result under `task`: rerank_output, score_output or
// embedding_output.
OutputRecord output_line(const TaskRecord& record, const RecordResult& result,
                         const TaskConfig& task);

// Indices of `scores`, the best first: ties keep input order, NaN ranks last. The one ranking of
// the rerank output and of every API that sorts by score.
std::vector<size_t> best_first(const std::vector<float>& scores);

// {"id"?, "results": [{"index", "id"?, "score"}]}, best first, cut to top_k (0 keeps all).
OutputRecord rerank_output(const TaskRecord& record, const std::vector<float>& scores, int top_k);

// {"id"?, "score"}
OutputRecord score_output(const TaskRecord& record, float score);

// {"id"?, "dense"?, "sparse"?, "colbert"?}: sparse weights keyed by token id, or by token text
// when the result has the tokens; "colbert" holds the multi-vector.
OutputRecord embedding_output(const TaskRecord& record, const Embedding& embedding);

OutputRecord score_value(float score);

// A record id (string or integer) as it goes into an output line.
OutputRecord output_id(const nlohmann::json& id);

}  // namespace engine
