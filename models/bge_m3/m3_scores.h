// BGE-M3's three representations and their scores, as FlagEmbedding's BGEM3FlagModel computes
// them: dense (dot product of L2-normalised CLS vectors), lexical (sum over shared tokens of the
// product of their weights) and ColBERT (for each query vector the best passage vector, summed
// and divided by the number of query vectors).
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_set>
#include <vector>

namespace models::bge_m3 {

// Token id -> weight, in order of first appearance; only weights above zero.
using LexicalWeights = std::vector<std::pair<int64_t, float>>;

// Merges per-token weights by token id (the largest wins), without `skip` ids and zeros.
LexicalWeights lexical_weights(const std::vector<int64_t>& ids, const float* weights,
                               const std::unordered_set<int64_t>& skip);

float dense_score(const std::vector<float>& query, const std::vector<float>& passage);
float lexical_score(const LexicalWeights& query, const LexicalWeights& passage);
// Vectors are row-major [rows x dim].
float colbert_score(const std::vector<float>& query, const std::vector<float>& passage,
                    size_t dim);

}  // namespace models::bge_m3
