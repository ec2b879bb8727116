// What a family computed for one record, before anything is written: the batch job renders it as
// its JSONL output line (records.h output_line), `engine serve` in each API dialect
// (serve/api.h). Families fill it (runtime/family_adapter.h finish); nothing that renders it
// knows a family, and nothing parses an output line to get the values back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace engine {

// Weights of vocabulary tokens (BGE-M3's lexical weights, SPLADE-style outputs).
struct SparseVector {
  std::vector<int64_t> ids;         // token ids, in the order the family gives them
  std::vector<float> weights;       // one per id
  std::vector<std::string> tokens;  // one per id when the output is keyed by token text, else empty
};

// A text's representations; each is there when the family computed it.
struct Embedding {
  std::optional<std::vector<float>> dense;
  std::optional<SparseVector> sparse;
  // One vector per token (ColBERT late interaction), each of the same width.
  std::optional<std::vector<std::vector<float>>> multi_vector;
};

struct RecordResult {
  std::vector<float> scores;           // rerank and score: one per passage, in passage order
  std::optional<Embedding> embedding;  // embed
};

}  // namespace engine
