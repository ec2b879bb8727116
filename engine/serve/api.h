// The request and response shapes `engine serve` speaks, on top of the family adapter and the
// request batcher; no HTTP here (server.h does the transport). Three dialects:
//   TEI (text-embeddings-inference): POST /rerank, /embed, /embed_sparse, /predict, /tokenize,
//     GET /info;
//   Cohere and Jina: POST /v1/rerank, /v2/rerank;
//   OpenAI: POST /v1/embeddings.
// Scores and vectors come from the same plan() -> batches -> finish() path as a batch job's, so
// they equal the job's for the same inputs (docs/serving.md lists where a shape differs).
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/config/config.h"
#include "engine/runtime/family_adapter.h"
#include "engine/runtime/model_bundle.h"
#include "engine/serve/request_batcher.h"

namespace engine {

// How a dialect writes its errors: TEI {"error", "error_type"}, Cohere {"message"}, OpenAI
// {"error": {"message", "type", "param", "code"}}.
enum class Dialect { kTei, kCohere, kOpenAi };

// A request that cannot be answered: the HTTP status and a message naming the field.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string param = "")
      : std::runtime_error(message), status_(status), param_(std::move(param)) {}
  int status() const { return status_; }
  const std::string& param() const { return param_; }

 private:
  int status_;
  std::string param_;
};

// The error body of `dialect` for `status` and `message`.
std::string error_body(Dialect dialect, int status, const std::string& message,
                       const std::string& param = "");

class ServeApi {
 public:
  // `config.task.kind`: rerank (score configs are served as rerank) or embed; the adapter was
  // made for it with task.top_k 0.
  ServeApi(const Config& config, const ModelBundle& bundle, const FamilyAdapter& adapter,
           RequestBatcher& batcher);

  // Each takes the request body and returns the response body; throws ApiError.
  std::string tei_rerank(const std::string& body) const;
  std::string tei_predict(const std::string& body) const;
  std::string tei_embed(const std::string& body) const;
  std::string tei_embed_sparse(const std::string& body) const;
  std::string tei_tokenize(const std::string& body) const;
  std::string cohere_rerank(const std::string& body, int version) const;
  std::string openai_embeddings(const std::string& body) const;
  std::string info() const;

 private:
  // The scores of `documents` for `query` under `instruction` (unset: the server's), in document
  // order.
  std::vector<float> scores(const std::string& query, const std::vector<std::string>& documents,
                            const std::string& field,
                            const std::optional<std::string>& instruction) const;
  // The embedding of each text, under the prompt `prompt_name` (empty: the server's). `tokens`,
  // when given, gets the tokens of the sequences the model ran, special ones included.
  std::vector<Embedding> embeddings(const std::vector<std::string>& texts, const std::string& field,
                                    int64_t* tokens = nullptr,
                                    const std::string& prompt_name = "") const;
  // Plans, queues, waits and finishes `records`: one result each.
  std::vector<RecordResult> run(const std::vector<TaskRecord>& records, const std::string& field,
                                int64_t* tokens = nullptr) const;
  void require(TaskKind kind, const char* route) const;

  const Config& config_;
  const ModelBundle& bundle_;
  const FamilyAdapter& adapter_;
  RequestBatcher& batcher_;
};

}  // namespace engine
