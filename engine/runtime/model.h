// A loaded model graph behind one interface, so that the bundle format (TorchScript today; a
// torch.export / AOTInductor package later) is known to one loader only.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include "engine/runtime/manifest.h"

namespace engine {

class Model {
 public:
  virtual ~Model() = default;
  // Runs the graph; `inputs` follow the manifest's input names, in order. Returns its outputs.
  virtual std::vector<at::Tensor> forward(const std::vector<at::Tensor>& inputs) = 0;
  // Parameters and buffers with their dotted names.
  virtual std::vector<std::pair<std::string, at::Tensor>> named_tensors() const = 0;
  virtual c10::Device device() const = 0;
};

struct ModelLoadOptions {
  c10::Device device = c10::Device(c10::kCPU);
  c10::ScalarType dtype = c10::kFloat;  // for floating-point parameters and buffers only
  // The word embedding table (by its parameter name) may keep a dtype of its own.
  std::string embedding_parameter;
  std::optional<c10::ScalarType> embedding_dtype;
  bool verify_checksum = true;
};

// Loads the bundle's model file. Throws ConfigError when it is missing, does not match the
// manifest's checksum, or cannot be read as the manifest's model_format.
std::unique_ptr<Model> load_model(const Manifest& manifest, const ModelLoadOptions& options);

}  // namespace engine
