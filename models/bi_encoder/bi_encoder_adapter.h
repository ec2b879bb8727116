// Bi-encoders (StructBERT-style sentence vectors): each text is encoded alone, its vector is the
// mean of the last hidden states over its real tokens, and a pair's score is the cosine of the two
// vectors. Tasks: embed (the vector), score and rerank (cosine; the query encoded once).
#pragma once

#include <memory>

#include "engine/runtime/family_adapter.h"

namespace models::bi_encoder {

// The family's model.options, typed; throws ConfigError naming a bad or unknown key.
std::shared_ptr<const engine::FamilyOptions> read_options(const engine::OptionsContext& context);
std::unique_ptr<engine::FamilyAdapter> make_adapter(const engine::AdapterContext& context);

}  // namespace models::bi_encoder
