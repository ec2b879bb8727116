#include "models/registry.h"

#include "engine/runtime/family_adapter.h"
#include "models/cross_encoder/cross_encoder_adapter.h"

namespace models {

void register_model_families() {
  engine::register_family("cross_encoder", &cross_encoder::make_adapter);
}

}  // namespace models
