#include "engine/io/records.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

#include "engine/common/error.h"
#include "engine/text/utf8.h"

namespace engine {
namespace {

std::string text_field(const nlohmann::json& object, const char* key, const std::string& where) {
  const auto& value = object.at(key);
  check<RecordError>(value.is_string(), "{} must be a string, found {}", where, value.type_name());
  return value.get<std::string>();
}

nlohmann::json record_id(const nlohmann::json& object) {
  if (!object.contains("id")) return nullptr;
  const auto& id = object.at("id");
  check<RecordError>(id.is_string() || id.is_number_integer() || id.is_null(),
                     "'id' must be a string or an integer, found {}", id.type_name());
  return id;
}

PassageInput parse_passage(const nlohmann::json& value, size_t index) {
  const std::string where = fmt::format("passages[{}]", index);
  if (value.is_string()) return {value.get<std::string>(), nullptr};
  check<RecordError>(value.is_object(), "{} must be a string or an object with \"text\", found {}",
                     where, value.type_name());
  check<RecordError>(value.contains("text"), "{} has no \"text\"", where);
  PassageInput passage{text_field(value, "text", where + ".text"), nullptr};
  if (value.contains("id")) {
    const auto& id = value.at("id");
    check<RecordError>(id.is_string() || id.is_number_integer(),
                       "{}.id must be a string or an integer, found {}", where, id.type_name());
    passage.id = id;
  }
  return passage;
}

// The first of `keys` present in `object`.
const char* present_key(const nlohmann::json& object, std::initializer_list<const char*> keys) {
  for (const char* key : keys) {
    if (object.contains(key)) return key;
  }
  return nullptr;
}

// Best first; a NaN score (a broken model) sorts last instead of breaking the ordering.
bool ranks_before(float a, float b) {
  if (std::isnan(b)) return !std::isnan(a);
  return a > b;
}

}  // namespace

TaskRecord parse_record(const std::string& line, TaskKind kind, nlohmann::json& id) {
  id = nullptr;
  const size_t bad_byte = find_invalid_utf8(line);
  check<RecordError>(bad_byte == std::string::npos,
                     "invalid UTF-8 at byte {} of the line; the input must be UTF-8", bad_byte);
  check<RecordError>(line.find_first_not_of(" \t") != std::string::npos,
                     "empty line; every line must hold one JSON record");
  nlohmann::json object;
  try {
    object = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& error) {
    throw RecordError(
        fmt::format("malformed JSON at byte {}: {}", error.byte,
                    std::string(error.what()).substr(std::string(error.what()).find(':') + 2)));
  }
  check<RecordError>(object.is_object(), "a record must be a JSON object, found {}",
                     object.type_name());
  id = record_id(object);

  TaskRecord record;
  record.id = id;
  if (kind != TaskKind::kEmbed && object.contains("instruction") &&
      !object.at("instruction").is_null()) {
    record.instruction = text_field(object, "instruction", "\"instruction\"");
  }
  if (kind == TaskKind::kRerank) {
    check<RecordError>(object.contains("query"), "missing \"query\"");
    record.query = text_field(object, "query", "\"query\"");
    check<RecordError>(object.contains("passages"), "missing \"passages\"");
    const auto& passages = object.at("passages");
    check<RecordError>(passages.is_array(), "\"passages\" must be a list, found {}",
                       passages.type_name());
    check<RecordError>(!passages.empty(), "\"passages\" is empty; give at least one passage");
    for (size_t i = 0; i < passages.size(); ++i) {
      record.passages.push_back(parse_passage(passages[i], i));
    }
    return record;
  }
  if (kind == TaskKind::kEmbed) {
    check<RecordError>(object.contains("text"), "missing \"text\"");
    record.query = text_field(object, "text", "\"text\"");
    if (object.contains("prompt_name") && !object.at("prompt_name").is_null()) {
      record.prompt_name = text_field(object, "prompt_name", "\"prompt_name\"");
      check<RecordError>(!record.prompt_name.empty(),
                         "\"prompt_name\" is empty; name a prompt of the model, or none");
    }
    return record;
  }
  const char* first = present_key(object, {"text_a", "query"});
  const char* second = present_key(object, {"text_b", "passage"});
  check<RecordError>(first && second,
                     "a score record needs \"text_a\" and \"text_b\" (or \"query\" and "
                     "\"passage\")");
  record.query = text_field(object, first, fmt::format("\"{}\"", first));
  record.passages.push_back({text_field(object, second, fmt::format("\"{}\"", second)), nullptr});
  return record;
}

OutputRecord error_record(int64_t line, const nlohmann::json& id, const std::string& message) {
  OutputRecord output = OutputRecord::object();
  output["line"] = line;
  if (!id.is_null()) output["id"] = output_id(id);
  output["error"] = message;
  return output;
}

// Ids are strings or integers; they keep their exact form in the output.
OutputRecord output_id(const nlohmann::json& id) {
  if (id.is_string()) return OutputRecord(id.get<std::string>());
  if (id.is_number_unsigned()) return OutputRecord(id.get<uint64_t>());
  return OutputRecord(id.get<int64_t>());
}

OutputRecord score_value(float score) { return OutputRecord(score); }

std::vector<size_t> best_first(const std::vector<float>& scores) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return ranks_before(scores[a], scores[b]); });
  return order;
}

OutputRecord rerank_output(const TaskRecord& record, const std::vector<float>& scores, int top_k) {
  std::vector<size_t> order = best_first(scores);
  if (top_k > 0 && order.size() > static_cast<size_t>(top_k)) order.resize(top_k);
  OutputRecord results = OutputRecord::array();
  for (size_t index : order) {
    OutputRecord result = OutputRecord::object();
    result["index"] = index;
    if (!record.passages[index].id.is_null()) result["id"] = output_id(record.passages[index].id);
    result["score"] = score_value(scores[index]);
    results.push_back(std::move(result));
  }
  OutputRecord output = OutputRecord::object();
  if (!record.id.is_null()) output["id"] = output_id(record.id);
  output["results"] = std::move(results);
  return output;
}

OutputRecord score_output(const TaskRecord& record, float score) {
  OutputRecord output = OutputRecord::object();
  if (!record.id.is_null()) output["id"] = output_id(record.id);
  output["score"] = score_value(score);
  return output;
}

OutputRecord embedding_output(const TaskRecord& record, const Embedding& embedding) {
  OutputRecord output = OutputRecord::object();
  if (!record.id.is_null()) output["id"] = output_id(record.id);
  if (embedding.dense) output["dense"] = *embedding.dense;
  if (const auto& sparse = embedding.sparse) {
    OutputRecord weights = OutputRecord::object();
    const bool by_token = !sparse->tokens.empty();
    for (size_t i = 0; i < sparse->ids.size(); ++i) {
      weights[by_token ? sparse->tokens[i] : std::to_string(sparse->ids[i])] = sparse->weights[i];
    }
    output["sparse"] = std::move(weights);
  }
  if (embedding.multi_vector) output["colbert"] = *embedding.multi_vector;
  return output;
}

OutputRecord output_line(const TaskRecord& record, const RecordResult& result,
                         const TaskConfig& task) {
  if (task.kind == TaskKind::kEmbed) {
    check<std::logic_error>(result.embedding.has_value(),
                            "an embed task's result holds no embedding");
    return embedding_output(record, *result.embedding);
  }
  check<std::logic_error>(result.scores.size() == record.passages.size(),
                          "the result holds {} scores for {} passages", result.scores.size(),
                          record.passages.size());
  if (task.kind == TaskKind::kScore) return score_output(record, result.scores.front());
  return rerank_output(record, result.scores, task.top_k);
}

}  // namespace engine
