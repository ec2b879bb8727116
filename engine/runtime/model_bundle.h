// A model bundle loaded and checked: manifest, tokenizer and model graph on its device.
#pragma once

#include <memory>
#include <string>

#include "engine/config/config.h"
#include "engine/runtime/manifest.h"
#include "engine/runtime/model.h"
#include "engine/runtime/precision_plan.h"
#include "engine/text/tokenizer.h"

namespace engine {

struct ModelBundle {
  Manifest manifest;
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Model> model;
  c10::Device device = c10::Device(c10::kCPU);
  c10::ScalarType dtype = c10::kFloat;
  PrecisionPlan precision;
};

c10::ScalarType parse_dtype(const std::string& name);
const char* dtype_name(c10::ScalarType dtype);

// Loads and cross-checks the parts of the bundle at config.path: the tokenizer's vocabulary must
// match the manifest's, and the model's embedding table must hold every id the tokenizer makes.
ModelBundle load_bundle(const ModelConfig& config);

// The manifest and tokenizer only, for commands that do not run the model.
ModelBundle load_bundle_without_model(const std::string& directory);

}  // namespace engine
