#include "models/registry.h"

#include "engine/runtime/family_adapter.h"
#include "models/bge_m3/bge_m3_adapter.h"
#include "models/bi_encoder/bi_encoder_adapter.h"
#include "models/cross_encoder/cross_encoder_adapter.h"
#include "models/cross_encoder/cross_encoder_options.h"
#include "models/llm_reranker/llm_reranker_adapter.h"

namespace models {

void register_model_families() {
  engine::register_family("cross_encoder",
                          {&cross_encoder::read_options, &cross_encoder::make_adapter});
  engine::register_family("bge_m3", {&bge_m3::read_options, &bge_m3::make_adapter});
  engine::register_family("bi_encoder", {&bi_encoder::read_options, &bi_encoder::make_adapter});
  engine::register_family("llm_reranker",
                          {&llm_reranker::read_options, &llm_reranker::make_adapter});
}

}  // namespace models
