// The loaders behind load_model (model.h), one per engine.json model_format; load_model checks the
// file and its checksum and picks one. Only these files know how a format is read.
#pragma once

#include <memory>

#include "engine/runtime/manifest.h"
#include "engine/runtime/model.h"

namespace engine {

// model_format torchscript: model.pt, a torch.jit trace (torchscript_model.cc).
std::unique_ptr<Model> load_torchscript_model(const Manifest& manifest,
                                              const ModelLoadOptions& options);

// model_format aoti: model.pt2, an AOTInductor package compiled for one machine (aoti_model.cc).
std::unique_ptr<Model> load_aoti_model(const Manifest& manifest, const ModelLoadOptions& options);

}  // namespace engine
