#include "engine/runtime/pair_scoring_adapter.h"

#include <algorithm>
#include <limits>

#include <ATen/ATen.h>

#include "engine/common/error.h"

namespace engine {

std::vector<PlannedSequence> PairScoringAdapter::plan(const TaskRecord& record) const {
  check<RecordError>(!record.instruction || takes_instruction(),
                     "\"instruction\" is given, but this model's pairs have no place for one; "
                     "leave it out");
  std::vector<PlannedSequence> sequences;
  for (size_t passage = 0; passage < record.passages.size(); ++passage) {
    for (Encoding& encoding :
         encode_pair(record.query, record.passages[passage].text, record.instruction)) {
      sequences.push_back({std::move(encoding), static_cast<int>(passage)});
    }
  }
  return sequences;
}

std::vector<SequenceResult> PairScoringAdapter::results_from_scores(const at::Tensor& scores,
                                                                    bool sigmoid) {
  at::Tensor values = scores.to(at::kFloat);
  if (sigmoid) values = at::sigmoid(values);
  values = values.to(at::kCPU).contiguous();
  const float* data = values.data_ptr<float>();
  std::vector<SequenceResult> results(static_cast<size_t>(values.numel()));
  for (size_t i = 0; i < results.size(); ++i) results[i].score = data[i];
  return results;
}

RecordResult PairScoringAdapter::finish(const TaskRecord& record,
                                        const std::vector<PlannedSequence>& plan,
                                        const std::vector<SequenceResult>& results) const {
  RecordResult result;
  result.scores.assign(record.passages.size(), -std::numeric_limits<float>::infinity());
  for (size_t i = 0; i < plan.size(); ++i) {
    float& best = result.scores[static_cast<size_t>(plan[i].slot)];
    best = std::max(best, results[i].score);
  }
  return result;
}

}  // namespace engine
