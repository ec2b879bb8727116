// The common part of families that encode each text on its own (bi-encoders, BGE-M3): every
// task is served; the query and each passage are one sequence each (the query once per record);
// embed gives a text's representations, rerank and score compare the query's with each
// passage's.
#pragma once

#include <string>
#include <vector>

#include "engine/runtime/family_adapter.h"

namespace engine {

class TextEmbeddingAdapter : public FamilyAdapter {
 public:
  // Throws ConfigError when task.max_length passes the model's positions.
  TextEmbeddingAdapter(const ModelBundle& bundle, const TaskConfig& task);

  bool serves(TaskKind) const override { return true; }
  std::vector<PlannedSequence> plan(const TaskRecord& record) const override;
  RecordResult finish(const TaskRecord& record, const std::vector<PlannedSequence>& plan,
                      const std::vector<SequenceResult>& results) const override;

 protected:
  static constexpr int kQuerySlot = -1;

  // How well a passage matches the query.
  virtual float pair_score(const PlannedSequence& query_plan, const SequenceResult& query,
                           const PlannedSequence& passage_plan,
                           const SequenceResult& passage) const = 0;
  // The text of the prompt `name` (a record's prompt_name; "none" is no prompt). Throws
  // RecordError for a name the model has no prompt of; by default it has none.
  virtual std::string prompt_named(const std::string& name) const;
  // A text's representations, for embed.
  virtual Embedding embedding(const PlannedSequence& planned,
                              const SequenceResult& result) const = 0;

  const ModelBundle& bundle_;
  const TaskConfig& task_;
  // Text put before the query (an embed record's text) and before each passage, as
  // sentence-transformers' prompts are: joined to the text before it is tokenized.
  std::string query_prompt_;
  std::string passage_prompt_;
};

}  // namespace engine
