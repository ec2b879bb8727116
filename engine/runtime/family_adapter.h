// The seam between the engine and a model family (models/<family>/): the family turns a record
// into token sequences, a batch of sequences into results, and a record's results into its typed
// result (io/record_result.h), which the batch job writes as JSONL and `engine serve` answers in
// each API dialect. Nothing under engine/ names a family.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <typeinfo>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/common/error.h"
#include "engine/config/config.h"
#include "engine/io/record_result.h"
#include "engine/io/records.h"
#include "engine/runtime/model_bundle.h"
#include "engine/text/tokenizer.h"

namespace engine {

// A family's own settings: `model.options`, which the general config passes on unread. Each family
// registers a reader that parses them, once, into a typed struct derived from this, rejecting
// keys it does not know; the job reads them when it plans (before weights load), so a typo fails
// `engine check` and `engine launch` at once.
class FamilyOptions {
 public:
  virtual ~FamilyOptions() = default;
  // Every option with the value in effect, defaults included, as {"key": value}: recorded in the
  // job's identity (as model.options.KEY) so that a changed option is not resumed into a job.
  virtual nlohmann::json settings() const = 0;
};

// What a family's options may depend on: the manifest (a label's range, a default prompt) and the
// task (BGE-M3's outputs).
struct OptionsContext {
  const ConfigNode& options;  // model.options
  const Manifest& manifest;
  const TaskConfig& task;
};

struct AdapterContext {
  ModelBundle& bundle;
  const TaskConfig& task;
  const FamilyOptions& options;  // what the family's reader made of model.options
};

// The family's own options type, from a context whose options its reader made.
template <typename Options>
const Options& family_options(const AdapterContext& context) {
  const auto* options = dynamic_cast<const Options*>(&context.options);
  check<std::logic_error>(options != nullptr, "the adapter was given options of another family");
  return *options;
}

// A sequence a record needs, and the slot of the record it serves (the adapter's to define: a
// passage index, the query, a chunk's passage).
struct PlannedSequence {
  Encoding encoding;
  int slot = 0;
};

// What the model produced for one sequence; each family fills what it computes.
struct SequenceResult {
  float score = 0;                   // scoring families, after the activation
  std::vector<float> vector;         // one vector per sequence (pooled, CLS)
  std::vector<float> token_weights;  // one weight per real token
  std::vector<float> token_vectors;  // [tokens x hidden], row-major
};

// The batch job calls plan() and finish() on threads of their own while run() runs (batch_job.h):
// they must not change the adapter.
class FamilyAdapter {
 public:
  virtual ~FamilyAdapter() = default;

  // Whether the family serves `kind`; the job refuses a task it does not serve.
  virtual bool serves(TaskKind kind) const = 0;

  // The sequences `record` needs. Throws RecordError for a record that cannot be served.
  virtual std::vector<PlannedSequence> plan(const TaskRecord& record) const = 0;

  // Runs one batch padded to `padded_length`: one result per sequence, in order.
  virtual std::vector<SequenceResult> run(const std::vector<const Encoding*>& batch,
                                          size_t padded_length) = 0;

  // The result of `record` from the results of its planned sequences, in plan order: one score
  // per passage for rerank and score, the text's embedding for embed.
  virtual RecordResult finish(const TaskRecord& record, const std::vector<PlannedSequence>& plan,
                              const std::vector<SequenceResult>& results) const = 0;

  // One line for `engine check`: what the adapter computes.
  virtual std::string describe() const = 0;

  // What a batch of B sequences padded to L adds to the device's memory, as the family reckons
  // it from its graph: bytes per token (B x L) and per token and position (B x L^2). The batch
  // controller plans by it until it has measured batches of its own (batch_controller.h). None:
  // the controller learns from the batches alone.
  struct MemoryEstimate {
    double per_token = 0;
    double per_token_squared = 0;
  };
  virtual std::optional<MemoryEstimate> memory_estimate() const { return std::nullopt; }

  // Whether run() computes the ids a record's sequences share (Encoding::shared_prefix) once for
  // the sequences of one batch: the planner then keeps a record's sequences in batches of their
  // own (cut_grouped_batches) instead of sorting them among other records' by length, and a
  // group split over batches (by the limits, or after running out of memory) reuses the prefix's
  // work from the batch before.
  virtual bool runs_shared_prefixes_once() const { return false; }

  // The batches of one round (ModelStage::run) are done: drop whatever run() kept from one batch
  // for the next, so that nothing stays allocated between requests.
  virtual void forget_between_batches() {}
};

using AdapterFactory = std::unique_ptr<FamilyAdapter> (*)(const AdapterContext&);
using OptionsReader = std::shared_ptr<const FamilyOptions> (*)(const OptionsContext&);

struct FamilyRegistration {
  OptionsReader read_options;
  AdapterFactory make_adapter;
};

void register_family(const std::string& name, FamilyRegistration family);
// The family's options from model.options. Throws ConfigError naming the registered families when
// `family` is not one of them, and the family reader's ConfigError for a bad or unknown key.
std::shared_ptr<const FamilyOptions> read_family_options(const std::string& family,
                                                         const OptionsContext& context);
// Throws ConfigError naming the registered families when `family` is not one of them, or when the
// family does not serve the context's task.
std::unique_ptr<FamilyAdapter> make_adapter(const std::string& family,
                                            const AdapterContext& context);

}  // namespace engine
