// BGE-M3 (BAAI/bge-m3): one XLM-R pass gives a dense vector, per-token lexical weights and
// ColBERT vectors. Task embed writes the chosen ones; rerank and score rank passages by one of
// them or their weighted combination, as FlagEmbedding's BGEM3FlagModel does.
#pragma once

#include <memory>

#include "engine/runtime/family_adapter.h"

namespace models::bge_m3 {

// The family's model.options, typed; throws ConfigError naming a bad or unknown key.
std::shared_ptr<const engine::FamilyOptions> read_options(const engine::OptionsContext& context);
std::unique_ptr<engine::FamilyAdapter> make_adapter(const engine::AdapterContext& context);

}  // namespace models::bge_m3
