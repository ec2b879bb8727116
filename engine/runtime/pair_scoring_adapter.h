// The common part of families that score a (query, passage) pair with one forward pass per
// sequence (cross-encoders, LLM rerankers): rerank and score tasks, one or more sequences per
// pair, the pair's score the best of its sequences.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/runtime/family_adapter.h"

namespace at {
class Tensor;
}

namespace engine {

class PairScoringAdapter : public FamilyAdapter {
 public:
  explicit PairScoringAdapter(const TaskConfig& task) : task_(task) {}

  bool serves(TaskKind kind) const override { return kind != TaskKind::kEmbed; }
  // One or more sequences per passage; the slot is the passage's index.
  std::vector<PlannedSequence> plan(const TaskRecord& record) const override;
  // The best score of each passage's sequences.
  RecordResult finish(const TaskRecord& record, const std::vector<PlannedSequence>& plan,
                      const std::vector<SequenceResult>& results) const override;

  // The sequences that score one pair (several when a long passage is cut into windows), under
  // the record's instruction (unset: the job's). Throws RecordError.
  virtual std::vector<Encoding> encode_pair(
      std::string_view query, std::string_view passage,
      const std::optional<std::string>& instruction) const = 0;
  // Whether the pairs have a place for an instruction; plan refuses a record's instruction
  // when they do not, rather than dropping it.
  virtual bool takes_instruction() const { return false; }

 protected:
  // One result per score of a [batch] tensor, through a sigmoid when asked.
  static std::vector<SequenceResult> results_from_scores(const at::Tensor& scores, bool sigmoid);

  const TaskConfig& task_;
};

}  // namespace engine
