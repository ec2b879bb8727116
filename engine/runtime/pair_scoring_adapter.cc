#include "engine/runtime/pair_scoring_adapter.h"

#include <algorithm>
#include <limits>

namespace engine {

std::vector<PlannedSequence> PairScoringAdapter::plan(const TaskRecord& record) const {
  std::vector<PlannedSequence> sequences;
  for (size_t passage = 0; passage < record.passages.size(); ++passage) {
    for (Encoding& encoding : encode_pair(record.query, record.passages[passage].text)) {
      sequences.push_back({std::move(encoding), static_cast<int>(passage)});
    }
  }
  return sequences;
}

OutputRecord PairScoringAdapter::finish(const TaskRecord& record,
                                        const std::vector<PlannedSequence>& plan,
                                        const std::vector<SequenceResult>& results) const {
  std::vector<float> scores(record.passages.size(), -std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < plan.size(); ++i) {
    float& best = scores[static_cast<size_t>(plan[i].slot)];
    best = std::max(best, results[i].score);
  }
  if (task_.kind == TaskKind::kScore) return score_output(record, scores.front());
  return rerank_output(record, scores, task_.top_k);
}

}  // namespace engine
