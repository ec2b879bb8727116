#include "models/bge_m3/m3_scores.h"

#include <algorithm>
#include <limits>
#include <unordered_map>

namespace models::bge_m3 {

LexicalWeights lexical_weights(const std::vector<int64_t>& ids, const float* weights,
                               const std::unordered_set<int64_t>& skip) {
  LexicalWeights merged;
  std::unordered_map<int64_t, size_t> position;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (skip.count(ids[i]) || !(weights[i] > 0)) continue;
    auto [found, inserted] = position.emplace(ids[i], merged.size());
    if (inserted) {
      merged.emplace_back(ids[i], weights[i]);
    } else {
      merged[found->second].second = std::max(merged[found->second].second, weights[i]);
    }
  }
  return merged;
}

float dense_score(const std::vector<float>& query, const std::vector<float>& passage) {
  float sum = 0;
  for (size_t i = 0; i < std::min(query.size(), passage.size()); ++i) sum += query[i] * passage[i];
  return sum;
}

float lexical_score(const LexicalWeights& query, const LexicalWeights& passage) {
  std::unordered_map<int64_t, float> passage_weights(passage.begin(), passage.end());
  float sum = 0;
  for (const auto& [id, weight] : query) {
    auto found = passage_weights.find(id);
    if (found != passage_weights.end()) sum += weight * found->second;
  }
  return sum;
}

float colbert_score(const std::vector<float>& query, const std::vector<float>& passage,
                    size_t dim) {
  const size_t query_rows = dim ? query.size() / dim : 0;
  const size_t passage_rows = dim ? passage.size() / dim : 0;
  if (query_rows == 0 || passage_rows == 0) return 0;
  float total = 0;
  for (size_t i = 0; i < query_rows; ++i) {
    float best = -std::numeric_limits<float>::infinity();
    for (size_t j = 0; j < passage_rows; ++j) {
      float sum = 0;
      for (size_t k = 0; k < dim; ++k) sum += query[i * dim + k] * passage[j * dim + k];
      best = std::max(best, sum);
    }
    total += best;
  }
  return total / static_cast<float>(query_rows);
}

}  // namespace models::bge_m3
