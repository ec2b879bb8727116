#include "engine/runtime/model_bundle.h"

#include "engine/common/error.h"
#include "engine/runtime/devices.h"
#include "engine/runtime/embedding_table.h"

namespace engine {

c10::ScalarType parse_dtype(const std::string& name) {
  if (name == "fp32") return c10::kFloat;
  if (name == "fp16") return c10::kHalf;
  if (name == "bf16") return c10::kBFloat16;
  throw ConfigError("dtype '" + name + "' is not one of fp32, fp16, bf16");
}

const char* dtype_name(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::kFloat:
      return "fp32";
    case c10::kHalf:
      return "fp16";
    case c10::kBFloat16:
      return "bf16";
    case c10::kChar:
      return "int8";
    default:
      return "other";
  }
}

namespace {

void check_embedding_table(const ModelBundle& bundle) {
  const Manifest& manifest = bundle.manifest;
  for (const auto& [name, tensor] : bundle.model->named_tensors()) {
    if (name != manifest.embedding_parameter) continue;
    check<ConfigError>(tensor.dim() == 2, "{}: embedding table '{}' has {} dimensions; expected 2",
                       manifest.model_path(), name, tensor.dim());
    check<ConfigError>(manifest.vocab_size <= tensor.size(0),
                       "{}/engine.json: vocab_size is {} but the model's embedding table '{}' "
                       "has only {} rows; ids past {} would index outside it. The manifest "
                       "does not belong to this model.pt",
                       manifest.directory, manifest.vocab_size, name, tensor.size(0),
                       tensor.size(0) - 1);
    return;
  }
  throw ConfigError(
      fmt::format("{}/engine.json: embedding_parameter '{}' is not a parameter of "
                  "{}",
                  manifest.directory, manifest.embedding_parameter, manifest.model_path()));
}

void check_tokenizer_vocabulary(const ModelBundle& bundle) {
  const Manifest& manifest = bundle.manifest;
  check<ConfigError>(bundle.tokenizer->vocab_size() == manifest.vocab_size,
                     "{}/engine.json: vocab_size is {} but the tokenizer '{}' has {} ids; the "
                     "manifest and the tokenizer file come from different models",
                     manifest.directory, manifest.vocab_size, manifest.tokenizer_file,
                     bundle.tokenizer->vocab_size());
}

ModelBundle read_manifest_and_tokenizer(const std::string& directory) {
  ModelBundle bundle;
  bundle.manifest = read_manifest(directory);
  bundle.tokenizer = make_tokenizer(bundle.manifest.tokenizer_kind,
                                    bundle.manifest.tokenizer_path(), bundle.manifest.tokenizer);
  return bundle;
}

}  // namespace

ModelBundle load_bundle_without_model(const std::string& directory) {
  ModelBundle bundle = read_manifest_and_tokenizer(directory);
  check_tokenizer_vocabulary(bundle);
  return bundle;
}

ModelBundle load_bundle(const ModelConfig& config) {
  ModelBundle bundle = read_manifest_and_tokenizer(config.path);
  bundle.device = resolve_device(config.device);
  bundle.precision = make_precision_plan(config, bundle.device, bundle.manifest.dtype,
                                         bundle.manifest.graph_dtype);
  bundle.dtype = bundle.precision.dtype;
  ModelLoadOptions options;
  options.device = bundle.device;
  options.dtype = bundle.dtype;
  options.embedding_parameter = bundle.manifest.embedding_parameter;
  options.embedding_scale = bundle.manifest.embedding_scale;
  options.embedding_dtype = bundle.precision.embedding_dtype;
  options.verify_checksum = config.verify_checksum;
  options.graph_in_dtype = bundle.precision.graph_in_dtype;
  options.graph = config.graph == "plain"   ? GraphMode::kPlain
                  : config.graph == "fused" ? GraphMode::kFused
                                            : GraphMode::kOneDnn;
  options.int8_linear = config.quantize == "int8";
  bundle.model = load_model(bundle.manifest, options);
  prepare_embedding_table(*bundle.model, bundle.manifest, options);
  // The embedding table first: a manifest that promises more ids than the model holds is the
  // error that would otherwise index out of bounds.
  check_embedding_table(bundle);
  check_tokenizer_vocabulary(bundle);
  bundle.model->prepare_for_inference();
  return bundle;
}

}  // namespace engine
