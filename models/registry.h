// The model families this engine serves: one line each in registry.cc.
#pragma once

namespace models {

// Registers every family with the engine's adapter registry. Call once at start-up.
void register_model_families();

}  // namespace models
