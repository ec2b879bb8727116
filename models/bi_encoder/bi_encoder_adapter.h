// Bi-encoders: each text is encoded alone into one vector, and a pair's score is the cosine (or,
// when the bundle says so, the dot product) of the two. The vector is the graph's own sentence
// embedding (pooling "graph": sentence-transformers directories, models/embedder/) or the mean of
// the last hidden states over the real tokens (pooling "mean": StructBERT). The bundle's prompts
// go before queries, passages and embedded texts as model.options names them. Tasks: embed (the
// vector), score and rerank (the query encoded once).
#pragma once

#include <memory>

#include "engine/runtime/family_adapter.h"

namespace models::bi_encoder {

// The family's model.options, typed; throws ConfigError naming a bad or unknown key.
std::shared_ptr<const engine::FamilyOptions> read_options(const engine::OptionsContext& context);
std::unique_ptr<engine::FamilyAdapter> make_adapter(const engine::AdapterContext& context);

}  // namespace models::bi_encoder
