// A loaded model graph behind one interface, so that each bundle format (engine.json model_format:
// a TorchScript trace, or an AOTInductor package compiled ahead of time) is known to its loader
// only (model_formats.h).
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
  // Another method of the graph (a TorchScript bundle may trace more than forward, e.g. the LLM
  // reranker's prefix_cache and continue_from); false when it has none of that name, or lost it
  // when the graph was frozen (model.graph fused, model.quantize int8).
  virtual bool has_method(const std::string& /*name*/) const { return false; }
  // Runs it as forward runs (autocast, fusion); throws std::logic_error when has_method is false.
  virtual std::vector<at::Tensor> run_method(const std::string& name,
                                             const std::vector<at::Tensor>& inputs);
  // Parameters and buffers with their dotted names.
  virtual std::vector<std::pair<std::string, at::Tensor>> named_tensors() const = 0;
  virtual c10::Device device() const = 0;
  // Called once the bundle's tensors are final (cast, table mapped and checked): lets the loader
  // fold the weights into the graph. Once folded, named_tensors() lists the graph's constant
  // tensors under the names constant.N (their byte count is unchanged; their names are gone).
  virtual void prepare_for_inference() {}
};

// model.graph (engine/config/config.h): how the loader prepares the graph before it first runs.
enum class GraphMode {
  kPlain,   // as exported, ATen's default kernels
  kOneDnn,  // on the CPU, matrix products through oneDNN primitives; the same as plain on CUDA
  kFused,   // frozen, and on the CPU in fp32 fused into oneDNN Graph partitions
};

struct ModelLoadOptions {
  c10::Device device = c10::Device(c10::kCPU);
  c10::ScalarType dtype = c10::kFloat;  // for floating-point parameters and buffers only
  // The word embedding table (by its parameter name) may keep a dtype of its own.
  std::string embedding_parameter;
  std::optional<c10::ScalarType> embedding_dtype;
  std::string embedding_scale;  // the table's row scale buffer (manifest.embedding_scale)
  bool verify_checksum = true;
  GraphMode graph = GraphMode::kOneDnn;  // model.graph
  // model.quantize int8 (CPU, graph onednn): linear layers in int8 (int8_linear.h), the graph
  // frozen first so that their weights are constants to pack.
  bool int8_linear = false;
  // The graph was traced in `dtype` (manifest graph_dtype): no cast at load but the table's, and
  // no autocast at run time.
  bool graph_in_dtype = false;
};

// The dtype a floating-point tensor is kept in under `options`: the plan's dtype for matrices;
// float32 for vectors (biases, LayerNorm weights) and the embedding table's row scale, which cost
// next to nothing and keep normalisation and the looked-up rows accurate under bf16 and fp16
// (docs/memory.md); the table's own dtype for the table. tools/export.py --dtype applies the same
// rule (models/common/bundle.py, kept_dtype).
c10::ScalarType kept_dtype(const std::string& name, const at::Tensor& value,
                           const ModelLoadOptions& options);

// Loads the bundle's model file. Throws ConfigError when it is missing, does not match the
// manifest's checksum, cannot be read as the manifest's model_format, or is a package compiled
// for another machine or asked for what it cannot do (a cast, int8 layers).
std::unique_ptr<Model> load_model(const Manifest& manifest, const ModelLoadOptions& options);

}  // namespace engine
