// load_model (model.h): the model file's presence and checksum, then the loader of its format.
#include <filesystem>

#include "engine/common/error.h"
#include "engine/common/sha256.h"
#include "engine/runtime/model.h"
#include "engine/runtime/model_formats.h"

namespace engine {

std::vector<at::Tensor> Model::run_method(const std::string& name,
                                          const std::vector<at::Tensor>& /*inputs*/) {
  throw std::logic_error("the model graph has no method " + name);
}

std::unique_ptr<Model> load_model(const Manifest& manifest, const ModelLoadOptions& options) {
  const std::string path = manifest.model_path();
  check<ConfigError>(std::filesystem::is_regular_file(path),
                     "model file '{}' is missing; re-export the bundle with tools/export.py", path);
  if (options.verify_checksum) {
    const std::string actual = file_sha256(path);
    check<ConfigError>(actual == manifest.model_sha256,
                       "model file '{}' is corrupt or was replaced: its SHA-256 is {} but "
                       "engine.json says {}; re-export the bundle (or set "
                       "model.verify_checksum: false if you changed it on purpose)",
                       path, actual, manifest.model_sha256);
  }
  // The manifest schema admits only these formats (models/common/manifest.schema.json).
  if (manifest.model_format == "aoti") return load_aoti_model(manifest, options);
  return load_torchscript_model(manifest, options);
}

}  // namespace engine
