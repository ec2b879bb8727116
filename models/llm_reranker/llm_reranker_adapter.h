// Decoder-only rerankers (BAAI/bge-reranker-v2-gemma): the pair as FlagEmbedding's
// FlagLLMReranker writes it,
//   <bos> "A: " query   "\n"   "B: " passage   "\n"   prompt
// with the query cut to 3/4 of max_length and the passage to what is left, scored by the logit of
// 'Yes' at the last real token. The exported graph computes that one logit from one row of the
// output head, never the [batch, length, vocabulary] logits.
#pragma once

#include <memory>

#include "engine/runtime/family_adapter.h"

namespace models::llm_reranker {

// The family's model.options, typed; throws ConfigError naming a bad or unknown key.
std::shared_ptr<const engine::FamilyOptions> read_options(const engine::OptionsContext& context);
std::unique_ptr<engine::FamilyAdapter> make_adapter(const engine::AdapterContext& context);

}  // namespace models::llm_reranker
