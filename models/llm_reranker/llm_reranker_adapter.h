// Decoder-only rerankers (bge-reranker-v2-gemma, Qwen3-Reranker, mxbai-rerank-v2): each pair
// written by the bundle's template and scored by its score rule (rerank_template.h), as the
// reference implementation named in engine.json does. The exported graph computes the logits of
// the score's tokens at the last real token from those rows of the output head only, never the
// [batch, length, vocabulary] logits.
#pragma once

#include <memory>

#include "engine/runtime/family_adapter.h"

namespace models::llm_reranker {

// The family's model.options, typed; throws ConfigError naming a bad or unknown key.
std::shared_ptr<const engine::FamilyOptions> read_options(const engine::OptionsContext& context);
std::unique_ptr<engine::FamilyAdapter> make_adapter(const engine::AdapterContext& context);

}  // namespace models::llm_reranker
