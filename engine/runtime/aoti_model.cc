// The AOTInductor loader (engine.json model_format "aoti", tools/export.py --format aoti): the only
// place that knows a bundle's model is a compiled package. A package holds machine code for the
// CPU it was compiled on and runs as compiled: in its own dtype, with its own kernels, so the
// load-time rewrites of TorchScript graphs (model.graph, model.quantize) and the compressed
// embedding table do not apply to it, and asking for them is refused rather than ignored.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>

#include "engine/common/cpu_features.h"
#include "engine/common/error.h"
#include "engine/runtime/model.h"
#include "engine/runtime/model_formats.h"

namespace engine {
namespace {

// Refuses a package compiled for another kind of machine, naming the package's target and what
// this one lacks, before any of its code runs (an instruction the CPU lacks would kill the
// process).
void check_compile_target(const Manifest& manifest, const ModelLoadOptions& options) {
  const nlohmann::json& target = manifest.compiled_for;
  const std::string device = target.value("device", "");
  const std::string where = manifest.directory + "/engine.json";
  check<ConfigError>(device == options.device.str() || (device == "cpu" && options.device.is_cpu()),
                     "{}: the package was compiled for {} but model.device is {}; export it "
                     "again with tools/export.py --format aoti on the machine that runs it",
                     where, device, options.device.str());
  std::vector<std::string> missing, unknown;
  for (const auto& feature : target.value("cpu_features", std::vector<std::string>{})) {
    const std::optional<bool> has = cpu_has(feature);
    if (!has) {
      unknown.push_back(feature);
    } else if (!*has) {
      missing.push_back(feature);
    }
  }
  check<ConfigError>(missing.empty() && unknown.empty(),
                     "{}: the package was compiled for a CPU with {} ({}), and this CPU {} {}; "
                     "export it again with tools/export.py --format aoti on this machine, or use "
                     "a TorchScript bundle, which runs on any CPU",
                     where, target.value("vector_isa", "?"),
                     fmt::join(target.value("cpu_features", std::vector<std::string>{}), ", "),
                     missing.empty() ? "cannot check" : "lacks",
                     fmt::join(missing.empty() ? unknown : missing, ", "));
}

void check_options(const Manifest& manifest, const ModelLoadOptions& options) {
  const std::string where = manifest.directory + "/engine.json";
  check<ConfigError>(!options.int8_linear,
                     "{}: model.quantize int8 rewrites a TorchScript graph at load, and this "
                     "bundle is a compiled package (model_format aoti); use model.quantize: none, "
                     "or a TorchScript bundle",
                     where);
  check<ConfigError>(!options.embedding_dtype || *options.embedding_dtype == options.dtype,
                     "{}: model.embedding_dtype cannot change a compiled package's table; use "
                     "model.embedding_dtype: same, or a TorchScript bundle",
                     where);
  const std::string compiled = manifest.graph_dtype;
  const char* wanted = options.dtype == c10::kFloat      ? "float32"
                       : options.dtype == c10::kBFloat16 ? "bfloat16"
                       : options.dtype == c10::kHalf     ? "float16"
                                                         : "another dtype";
  check<ConfigError>(compiled == wanted,
                     "{}: the package was compiled in {} and runs in it only, not in {}; set "
                     "model.dtype: bundle, or use a TorchScript bundle for a lower precision",
                     where, compiled, wanted);
}

class AotiModel : public Model {
 public:
  AotiModel(std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader, c10::Device device,
            int64_t min_batch)
      : loader_(std::move(loader)), device_(device), min_batch_(min_batch) {}

  // A batch smaller than the package takes (compiled_for.min_batch) is padded with copies of its
  // last row, whose outputs are dropped; every row's output depends on its own row only.
  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& inputs) override {
    const int64_t batch = inputs.empty() ? 0 : inputs[0].size(0);
    if (batch == 0 || batch >= min_batch_) return loader_->run(inputs);
    std::vector<at::Tensor> padded;
    for (const at::Tensor& input : inputs) {
      std::vector<int64_t> sizes = input.sizes().vec();
      sizes[0] = min_batch_ - batch;
      padded.push_back(at::cat({input, input.narrow(0, batch - 1, 1).expand(sizes)}));
    }
    std::vector<at::Tensor> outputs = loader_->run(padded);
    for (at::Tensor& output : outputs) output = output.narrow(0, 0, batch);
    return outputs;
  }

  // The package's constants under their original names (model.<module path>.weight), as the
  // TorchScript loader lists parameters, so the bundle's checks read the same names.
  std::vector<std::pair<std::string, at::Tensor>> named_tensors() const override {
    torch::inductor::AOTIModelContainerRunner* runner = loader_->get_runner();
    const auto original = runner->getConstantNamesToOriginalFQNs();
    std::vector<std::pair<std::string, at::Tensor>> result;
    for (const auto& [name, tensor] : runner->extract_constants_map(/*use_inactive=*/false)) {
      const auto found = original.find(name);
      result.emplace_back(found == original.end() ? name : found->second, tensor);
    }
    return result;
  }

  c10::Device device() const override { return device_; }

 private:
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader_;
  c10::Device device_;
  int64_t min_batch_;
};

}  // namespace

std::unique_ptr<Model> load_aoti_model(const Manifest& manifest, const ModelLoadOptions& options) {
  check_compile_target(manifest, options);
  check_options(manifest, options);
  const std::string path = manifest.model_path();
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> loader;
  try {
    loader = std::make_unique<torch::inductor::AOTIModelPackageLoader>(
        path, "model", /*run_single_threaded=*/false, /*num_runners=*/1,
        options.device.is_cuda() ? options.device.index() : c10::DeviceIndex(-1));
  } catch (const std::exception& error) {
    std::string message = error.what();
    message = message.substr(0, message.find('\n'));
    throw ConfigError(fmt::format(
        "model file '{}' cannot be loaded as an AOTInductor package (compiled by torch {}): {}",
        path, manifest.compiled_for.value("torch_version", "?"), message));
  }
  spdlog::debug("{}: AOTInductor package compiled for {}", path,
                manifest.compiled_for.value("vector_isa", "?"));
  return std::make_unique<AotiModel>(std::move(loader), options.device,
                                     manifest.compiled_for.value("min_batch", int64_t{1}));
}

}  // namespace engine
