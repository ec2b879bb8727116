#include "engine/serve/api.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "engine/common/error.h"
#include "engine/io/records.h"

namespace engine {
namespace {

using Json = nlohmann::json;

const char* type_name(const Json& value) {
  switch (value.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::array:
      return "a list";
    case Json::value_t::object:
      return "an object";
    default:
      return "a number";
  }
}

// Deeper than this, a body is refused rather than parsed: no request shape nests past 4.
constexpr int kMaxJsonDepth = 64;

// The body as a JSON object. Refused with 422, saying what and where: what is not JSON (the
// parser's message, with the byte offset; invalid UTF-8 is one such), a number past a double's
// range, nesting deeper than kMaxJsonDepth, and a key given twice in one object (which JSON
// parsers resolve differently, so no answer would be safe).
Json parse_object(const std::string& body) {
  std::vector<std::set<std::string>> keys;  // the keys of each open object (none for a list)
  const Json::parser_callback_t strict = [&keys](int depth, Json::parse_event_t event,
                                                 Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        if (depth >= kMaxJsonDepth) {
          throw ApiError(422, fmt::format("the body nests deeper than {} levels", kMaxJsonDepth));
        }
        keys.emplace_back();
        break;
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        keys.pop_back();
        break;
      case Json::parse_event_t::key: {
        const std::string key = parsed.get<std::string>();
        if (!keys.back().insert(key).second) {
          throw ApiError(422, fmt::format("the key '{}' appears twice in one object", key), key);
        }
        break;
      }
      case Json::parse_event_t::value:
        break;
    }
    return true;
  };
  Json json;
  try {
    json = Json::parse(body, strict);
  } catch (const Json::parse_error& error) {
    throw ApiError(422, fmt::format("the body is not JSON (byte {}): {}", error.byte,
                                    error.what()));
  } catch (const Json::exception& error) {
    throw ApiError(422, fmt::format("the body is not JSON: {}", error.what()));
  }
  if (!json.is_object()) {
    throw ApiError(422, fmt::format("the body must be a JSON object, not {}", type_name(json)));
  }
  return json;
}

std::string string_field(const Json& json, const char* key) {
  const auto found = json.find(key);
  if (found == json.end()) throw ApiError(422, fmt::format("'{}' is missing", key), key);
  if (!found->is_string()) {
    throw ApiError(422, fmt::format("'{}' must be a string, not {}", key, type_name(*found)), key);
  }
  return found->get<std::string>();
}

bool bool_field(const Json& json, const char* key, bool fallback) {
  const auto found = json.find(key);
  if (found == json.end() || found->is_null()) return fallback;
  if (!found->is_boolean()) {
    throw ApiError(422, fmt::format("'{}' must be true or false, not {}", key, type_name(*found)),
                   key);
  }
  return found->get<bool>();
}

// The request's "instruction" (an LLM reranker's, for this request's pairs); unset when absent.
std::optional<std::string> instruction_field(const Json& json) {
  const auto found = json.find("instruction");
  if (found == json.end() || found->is_null()) return std::nullopt;
  return string_field(json, "instruction");
}

// A list of texts under `key`: each a string, or (with `text_key`) an object holding one there.
// `single`: a bare string is a list of one.
std::vector<std::string> texts_field(const Json& json, const char* key, int max_items, bool single,
                                     const char* text_key = nullptr) {
  const auto found = json.find(key);
  if (found == json.end()) throw ApiError(422, fmt::format("'{}' is missing", key), key);
  if (single && found->is_string()) return {found->get<std::string>()};
  if (!found->is_array()) {
    throw ApiError(422,
                   fmt::format("'{}' must be a list of strings{}, not {}", key,
                               single ? " or a string" : "", type_name(*found)),
                   key);
  }
  if (found->empty()) throw ApiError(422, fmt::format("'{}' is empty", key), key);
  if (found->size() > static_cast<size_t>(max_items)) {
    throw ApiError(422,
                   fmt::format("'{}' has {} items; this server takes at most {} per request "
                               "(serve.max_client_batch_size)",
                               key, found->size(), max_items),
                   key);
  }
  std::vector<std::string> texts;
  for (size_t i = 0; i < found->size(); ++i) {
    const Json& item = (*found)[i];
    if (item.is_string()) {
      texts.push_back(item.get<std::string>());
    } else if (text_key != nullptr && item.is_object() && item.contains(text_key) &&
               item[text_key].is_string()) {
      texts.push_back(item[text_key].get<std::string>());
    } else {
      throw ApiError(
          422,
          fmt::format(
              "'{}[{}]' must be a string{}, not {}", key, i,
              text_key ? fmt::format(" or an object with a string '{}'", text_key) : std::string(),
              type_name(item)),
          key);
    }
  }
  return texts;
}

// The embedding's representation `part`, or a 400 saying which setting gives it.
template <typename Part>
const Part& embedding_part(const std::optional<Part>& part, const char* name) {
  if (!part) {
    throw ApiError(400, fmt::format("this server's embeddings have no {0} output: start it with a "
                                    "model whose embeddings include {0} (for a model with several "
                                    "outputs, model.options.outputs)",
                                    name));
  }
  return *part;
}

void normalize(std::vector<float>& vector) {
  double norm = 0;
  for (float value : vector) norm += static_cast<double>(value) * value;
  norm = std::sqrt(norm);
  if (norm <= 0) return;
  for (float& value : vector) value = static_cast<float>(value / norm);
}

std::string base64(const std::vector<float>& values) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string bytes(values.size() * sizeof(float), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());  // little-endian float32, as OpenAI's
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const auto byte = [&](size_t at) -> uint32_t {
      return at < bytes.size() ? static_cast<unsigned char>(bytes[at]) : 0;
    };
    const uint32_t triple = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += kAlphabet[triple >> 18 & 63];
    out += kAlphabet[triple >> 12 & 63];
    out += i + 1 < bytes.size() ? kAlphabet[triple >> 6 & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[triple & 63] : '=';
  }
  return out;
}

std::string request_id() {
  static thread_local std::mt19937_64 random(std::random_device{}());
  return fmt::format("{:016x}{:016x}", random(), random());
}

}  // namespace

std::string error_body(Dialect dialect, int status, const std::string& message,
                       const std::string& param) {
  // A message may quote what the client sent: bytes that are not UTF-8 are written as U+FFFD.
  constexpr auto kReplace = Json::error_handler_t::replace;
  const char* type = status == 429   ? "Overloaded"
                     : status == 503 ? "Unhealthy"
                     : status >= 500 ? "Backend"
                                     : "Validation";
  switch (dialect) {
    case Dialect::kTei:
      return Json{{"error", message}, {"error_type", type}}.dump(-1, ' ', false, kReplace);
    case Dialect::kCohere:
      return Json{{"message", message}}.dump(-1, ' ', false, kReplace);
    case Dialect::kOpenAi:
      return Json{{"error",
                   {{"message", message},
                    {"type", status >= 500 ? "server_error" : "invalid_request_error"},
                    {"param", param.empty() ? Json(nullptr) : Json(param)},
                    {"code", nullptr}}}}
          .dump(-1, ' ', false, kReplace);
  }
  return "";
}

ServeApi::ServeApi(const Config& config, const ModelBundle& bundle, const FamilyAdapter& adapter,
                   RequestBatcher& batcher)
    : config_(config), bundle_(bundle), adapter_(adapter), batcher_(batcher) {}

void ServeApi::require(TaskKind kind, const char* route) const {
  if (config_.task.kind == kind) return;
  throw ApiError(404, fmt::format("{} is not served here: this server runs task.kind {} (start "
                                  "another with task.kind {} for it)",
                                  route, task_name(config_.task.kind), task_name(kind)));
}

std::vector<RecordResult> ServeApi::run(const std::vector<TaskRecord>& records,
                                        const std::string& field, int64_t* tokens) const {
  std::vector<std::vector<PlannedSequence>> plans(records.size());
  std::vector<const Encoding*> sequences;
  for (size_t i = 0; i < records.size(); ++i) {
    try {
      plans[i] = adapter_.plan(records[i]);
    } catch (const RecordError& error) {
      throw ApiError(422, fmt::format("'{}': {}", field, error.what()), field);
    }
    for (const PlannedSequence& planned : plans[i]) {
      sequences.push_back(&planned.encoding);
      if (tokens != nullptr) *tokens += static_cast<int64_t>(planned.encoding.size());
    }
  }
  std::optional<std::future<BatchOutcome>> answer = batcher_.submit(sequences);
  if (!answer) {
    throw ApiError(429,
                   fmt::format("the server is busy: {} sequences are queued, the most it "
                               "holds is {} (serve.max_queue_sequences); retry later",
                               batcher_.queued_sequences(), config_.serve.max_queue_sequences));
  }
  BatchOutcome outcome = answer->get();
  std::vector<RecordResult> outputs;
  size_t next = 0;
  for (size_t i = 0; i < records.size(); ++i) {
    std::vector<SequenceResult> results;
    for (size_t j = 0; j < plans[i].size(); ++j, ++next) {
      if (!outcome.errors[next].empty()) {
        throw ApiError(500, fmt::format("'{}': {}", field, outcome.errors[next]), field);
      }
      results.push_back(std::move(outcome.results[next]));
    }
    outputs.push_back(adapter_.finish(records[i], plans[i], results));
  }
  return outputs;
}

std::vector<float> ServeApi::scores(const std::string& query,
                                    const std::vector<std::string>& documents,
                                    const std::string& field,
                                    const std::optional<std::string>& instruction) const {
  TaskRecord record;
  record.query = query;
  record.instruction = instruction;
  for (const std::string& document : documents) record.passages.push_back({document, nullptr});
  return run({record}, field).at(0).scores;
}

std::vector<Embedding> ServeApi::embeddings(const std::vector<std::string>& texts,
                                            const std::string& field, int64_t* tokens,
                                            const std::string& prompt_name) const {
  std::vector<TaskRecord> records(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    records[i].query = texts[i];
    records[i].prompt_name = prompt_name;
  }
  std::vector<Embedding> embeddings;
  for (RecordResult& result : run(records, field, tokens)) {
    check<std::logic_error>(result.embedding.has_value(), "an embed result holds no embedding");
    embeddings.push_back(std::move(*result.embedding));
  }
  return embeddings;
}

std::string ServeApi::tei_rerank(const std::string& body) const {
  require(TaskKind::kRerank, "/rerank");
  const Json request = parse_object(body);
  const std::string query = string_field(request, "query");
  const std::vector<std::string> texts =
      texts_field(request, "texts", config_.serve.max_client_batch_size, false);
  bool_field(request, "raw_scores", false);  // scores are as task.normalize makes them
  bool_field(request, "truncate", true);     // inputs are always truncated as the job does
  const bool return_text = bool_field(request, "return_text", false);
  const std::vector<float> all = scores(query, texts, "texts", instruction_field(request));
  OutputRecord response = OutputRecord::array();
  for (size_t index : best_first(all)) {
    OutputRecord item = {{"index", index}, {"score", score_value(all[index])}};
    if (return_text) item["text"] = texts[index];
    response.push_back(std::move(item));
  }
  return response.dump();
}

std::string ServeApi::cohere_rerank(const std::string& body, int version) const {
  require(TaskKind::kRerank, version == 1 ? "/v1/rerank" : "/v2/rerank");
  const Json request = parse_object(body);
  const std::string query = string_field(request, "query");
  const std::vector<std::string> documents =
      texts_field(request, "documents", config_.serve.max_client_batch_size, false, "text");
  size_t top_n = documents.size();
  if (const auto found = request.find("top_n"); found != request.end() && !found->is_null()) {
    if (!found->is_number_integer() || found->get<int64_t>() < 1) {
      throw ApiError(422, "'top_n' must be a whole number of at least 1", "top_n");
    }
    top_n = std::min(top_n, static_cast<size_t>(found->get<int64_t>()));
  }
  const bool return_documents = bool_field(request, "return_documents", false);
  const std::vector<float> all = scores(query, documents, "documents", instruction_field(request));
  const std::vector<size_t> order = best_first(all);
  OutputRecord results = OutputRecord::array();
  for (size_t rank = 0; rank < top_n; ++rank) {
    const size_t index = order[rank];
    OutputRecord item = {{"index", index}, {"relevance_score", score_value(all[index])}};
    if (return_documents) item["document"] = {{"text", documents[index]}};
    results.push_back(std::move(item));
  }
  OutputRecord response = {{"id", request_id()}, {"results", std::move(results)}};
  response["meta"] = {{"api_version", {{"version", version == 1 ? "1" : "2"}}},
                      {"billed_units", {{"search_units", 1}}}};
  if (request.contains("model") && request["model"].is_string()) {
    response["model"] = request["model"].get<std::string>();  // Jina echoes it
  }
  return response.dump();
}

std::string ServeApi::tei_predict(const std::string& body) const {
  require(TaskKind::kRerank, "/predict");
  const Json request = parse_object(body);
  const auto found = request.find("inputs");
  if (found == request.end()) throw ApiError(422, "'inputs' is missing", "inputs");
  // One pair ["a", "b"], or a list of pairs [["a", "b"], ...].
  const bool single = found->is_array() && found->size() == 2 && (*found)[0].is_string();
  std::vector<Json> pairs;
  if (single) {
    pairs.push_back(*found);
  } else if (found->is_array() && !found->empty()) {
    pairs.assign(found->begin(), found->end());
  } else {
    throw ApiError(422,
                   "'inputs' must be a pair of texts [text_a, text_b] or a list of pairs: this "
                   "model scores pairs",
                   "inputs");
  }
  if (pairs.size() > static_cast<size_t>(config_.serve.max_client_batch_size)) {
    throw ApiError(422,
                   fmt::format("'inputs' has {} pairs; this server takes at most {} per request "
                               "(serve.max_client_batch_size)",
                               pairs.size(), config_.serve.max_client_batch_size),
                   "inputs");
  }
  std::vector<TaskRecord> records;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const Json& pair = pairs[i];
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string()) {
      throw ApiError(422, fmt::format("'inputs[{}]' must be a pair of strings [text_a, text_b]", i),
                     "inputs");
    }
    TaskRecord record;
    record.query = pair[0].get<std::string>();
    record.passages.push_back({pair[1].get<std::string>(), nullptr});
    records.push_back(std::move(record));
  }
  OutputRecord response = OutputRecord::array();
  for (const RecordResult& result : run(records, "inputs")) {
    OutputRecord labels = OutputRecord::array();
    labels.push_back({{"score", score_value(result.scores.at(0))}, {"label", "score"}});
    response.push_back(std::move(labels));
  }
  return single ? response.at(0).dump() : response.dump();
}

std::string ServeApi::tei_embed(const std::string& body) const {
  require(TaskKind::kEmbed, "/embed");
  const Json request = parse_object(body);
  const std::vector<std::string> texts =
      texts_field(request, "inputs", config_.serve.max_client_batch_size, true);
  const bool normalized = bool_field(request, "normalize", true);
  bool_field(request, "truncate", true);
  // TEI's prompt_name: one of the model's prompts (config_sentence_transformers.json) by name.
  std::string prompt_name;
  if (const auto found = request.find("prompt_name"); found != request.end() && !found->is_null()) {
    prompt_name = string_field(request, "prompt_name");
  }
  OutputRecord response = OutputRecord::array();
  for (const Embedding& embedding : embeddings(texts, "inputs", nullptr, prompt_name)) {
    std::vector<float> vector = embedding_part(embedding.dense, "dense");
    if (normalized) normalize(vector);
    response.push_back(vector);
  }
  return response.dump();
}

std::string ServeApi::tei_embed_sparse(const std::string& body) const {
  require(TaskKind::kEmbed, "/embed_sparse");
  const Json request = parse_object(body);
  const std::vector<std::string> texts =
      texts_field(request, "inputs", config_.serve.max_client_batch_size, true);
  bool_field(request, "truncate", true);
  OutputRecord response = OutputRecord::array();
  for (const Embedding& embedding : embeddings(texts, "inputs")) {
    const SparseVector& sparse = embedding_part(embedding.sparse, "sparse");
    std::vector<std::pair<int64_t, float>> weights;
    for (size_t i = 0; i < sparse.ids.size(); ++i) {
      weights.emplace_back(sparse.ids[i], sparse.weights[i]);
    }
    std::sort(weights.begin(), weights.end());
    OutputRecord items = OutputRecord::array();
    for (const auto& [id, weight] : weights) items.push_back({{"index", id}, {"value", weight}});
    response.push_back(std::move(items));
  }
  return response.dump();
}

std::string ServeApi::openai_embeddings(const std::string& body) const {
  require(TaskKind::kEmbed, "/v1/embeddings");
  const Json request = parse_object(body);
  const auto input = request.find("input");
  if (input != request.end() && input->is_array() && !input->empty() &&
      ((*input)[0].is_number() || (*input)[0].is_array())) {
    throw ApiError(422, "'input' holds token ids; this server takes text", "input");
  }
  const std::vector<std::string> texts =
      texts_field(request, "input", config_.serve.max_client_batch_size, true);
  std::string format = "float";
  if (request.contains("encoding_format") && !request["encoding_format"].is_null()) {
    format = string_field(request, "encoding_format");
    if (format != "float" && format != "base64") {
      throw ApiError(422, "'encoding_format' must be float or base64", "encoding_format");
    }
  }
  int64_t tokens = 0;
  const std::vector<Embedding> outputs = embeddings(texts, "input", &tokens);
  OutputRecord data = OutputRecord::array();
  for (size_t i = 0; i < outputs.size(); ++i) {
    const std::vector<float>& vector = embedding_part(outputs[i].dense, "dense");
    if (const auto dimensions = request.find("dimensions");
        dimensions != request.end() && !dimensions->is_null() &&
        (!dimensions->is_number_integer() ||
         dimensions->get<int64_t>() != static_cast<int64_t>(vector.size()))) {
      throw ApiError(
          422,
          fmt::format("'dimensions': this model's embeddings have {} dimensions", vector.size()),
          "dimensions");
    }
    OutputRecord item = {{"object", "embedding"}, {"index", i}};
    if (format == "base64") {
      item["embedding"] = base64(vector);
    } else {
      item["embedding"] = vector;
    }
    data.push_back(std::move(item));
  }
  OutputRecord response = {{"object", "list"}, {"data", std::move(data)}};
  const auto model = request.find("model");
  response["model"] = model != request.end() && model->is_string() ? model->get<std::string>()
                                                                   : bundle_.manifest.directory;
  response["usage"] = {{"prompt_tokens", tokens}, {"total_tokens", tokens}};
  return response.dump();
}

std::string ServeApi::tei_tokenize(const std::string& body) const {
  const Json request = parse_object(body);
  const std::vector<std::string> texts =
      texts_field(request, "inputs", config_.serve.max_client_batch_size, true);
  const bool special = bool_field(request, "add_special_tokens", true);
  const Tokenizer& tokenizer = *bundle_.tokenizer;
  const size_t room =
      static_cast<size_t>(config_.task.max_length) - tokenizer.special_token_count(false);
  Json response = Json::array();
  for (const std::string& text : texts) {
    const std::vector<int64_t> content = tokenizer.encode(text, room);
    std::vector<int64_t> ids = special ? tokenizer.build_single(content).ids : content;
    // Where the text's own tokens sit among the special ones.
    size_t first = 0;
    while (first + content.size() <= ids.size() &&
           !std::equal(content.begin(), content.end(), ids.begin() + static_cast<long>(first))) {
      ++first;
    }
    Json tokens = Json::array();
    for (size_t i = 0; i < ids.size(); ++i) {
      const bool is_special = i < first || i >= first + content.size();
      tokens.push_back({{"id", ids[i]},
                        {"text", tokenizer.id_to_piece(ids[i])},
                        {"special", is_special},
                        {"start", nullptr},
                        {"stop", nullptr}});
    }
    response.push_back(std::move(tokens));
  }
  return response.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string ServeApi::info() const {
  const Manifest& manifest = bundle_.manifest;
  Json model_type;
  if (config_.task.kind == TaskKind::kEmbed) {
    model_type = {{"embedding", {{"pooling", manifest.document.value("pooling", "family")}}}};
  } else {
    model_type = {{"reranker", {{"family", manifest.family}}}};
  }
  return Json{{"model_id", manifest.source.value("model_id", manifest.directory)},
              {"model_sha", manifest.model_sha256},
              {"model_dtype", dtype_name(bundle_.dtype)},
              {"model_type", model_type},
              {"family", manifest.family},
              {"task", task_name(config_.task.kind)},
              {"max_input_length", config_.task.max_length},
              {"max_batch_tokens", config_.batching.max_tokens},
              {"max_client_batch_size", config_.serve.max_client_batch_size},
              {"max_queue_sequences", config_.serve.max_queue_sequences},
              {"max_wait_ms", config_.serve.max_wait_ms},
              {"device", bundle_.device.str()},
              {"version", "engine"}}
      .dump();
}

}  // namespace engine
