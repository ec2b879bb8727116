// Cross-encoder rerankers (bge-reranker, bce-reranker): query and passage in one sequence,
// one logit per pair. Pairs are built as FlagEmbedding's FlagReranker builds them.
#pragma once

#include <memory>

#include "engine/runtime/family_adapter.h"

namespace models::cross_encoder {

std::unique_ptr<engine::FamilyAdapter> make_adapter(const engine::AdapterContext& context);

}  // namespace models::cross_encoder
