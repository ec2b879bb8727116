// The TorchScript loader: the only place that knows the bundle's model is a torch.jit archive.
#include <cstdlib>
#include <optional>

#include <ATen/Config.h>
#include <ATen/autocast_mode.h>
#include <spdlog/spdlog.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/codegen/onednn/interface.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/passes/pass_manager.h>
#include <torch/script.h>

#include "engine/common/error.h"
#include "engine/runtime/cpu_attention.h"
#include "engine/runtime/graph_rewrites.h"
#include "engine/runtime/int8_linear.h"
#include "engine/runtime/model.h"
#include "engine/runtime/model_formats.h"

namespace engine {
namespace {

// Runs a graph traced in fp32 whose weights were cast to a lower precision: the trace baked some
// dtypes in (HF's attention masks are made in the traced dtype), and autocast casts the operands of
// each matrix product to the weights' dtype, as torch.autocast would in Python.
class AutocastScope {
 public:
  AutocastScope(c10::DeviceType device, c10::ScalarType dtype)
      : device_(device),
        enabled_(at::autocast::is_autocast_enabled(device)),
        dtype_(at::autocast::get_autocast_dtype(device)) {
    at::autocast::set_autocast_enabled(device_, true);
    at::autocast::set_autocast_dtype(device_, dtype);
  }
  ~AutocastScope() {
    at::autocast::set_autocast_enabled(device_, enabled_);
    at::autocast::set_autocast_dtype(device_, dtype_);
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  c10::DeviceType device_;
  bool enabled_;
  c10::ScalarType dtype_;
};

// oneDNN Graph fusion is a pass the JIT runs on every graph it optimizes, in any module of the
// process; it is registered once and does its work only while a model that asked for it runs on
// this thread (graphs are optimized lazily, inside forward, on the calling thread).
thread_local bool fuse_with_onednn = false;

void register_onednn_fusion() {
#if AT_MKLDNN_ENABLED()
  static const bool registered = [] {
    torch::jit::registerPrePass([](std::shared_ptr<torch::jit::Graph>& graph) {
      if (fuse_with_onednn) torch::jit::fuser::onednn::fuseGraph(graph);
    });
    return true;
  }();
  (void)registered;
#endif
}

class FusionScope {
 public:
  explicit FusionScope(bool enabled) : previous_(fuse_with_onednn) { fuse_with_onednn = enabled; }
  ~FusionScope() { fuse_with_onednn = previous_; }
  FusionScope(const FusionScope&) = delete;
  FusionScope& operator=(const FusionScope&) = delete;

 private:
  bool previous_;
};

class TorchScriptModel : public Model {
 public:
  TorchScriptModel(torch::jit::Module module, c10::Device device, c10::ScalarType dtype,
                   GraphMode graph, bool autocast, bool int8_linear)
      : module_(std::move(module)),
        device_(device),
        dtype_(dtype),
        graph_(graph),
        int8_linear_(int8_linear),
        autocast_(autocast && dtype != c10::kFloat) {
    // The weights are cast already; autocast's cache of cast weights would only hold copies.
    at::autocast::set_autocast_cache_enabled(false);
  }

  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& inputs) override {
    return call(module_.get_method("forward"), inputs);
  }

  bool has_method(const std::string& name) const override {
    return module_.find_method(name).has_value();
  }

  std::vector<at::Tensor> run_method(const std::string& name,
                                     const std::vector<at::Tensor>& inputs) override {
    const std::optional<torch::jit::Method> method = module_.find_method(name);
    if (!method) throw std::logic_error("the model graph has no method " + name);
    return call(*method, inputs);
  }

  std::vector<at::Tensor> call(const torch::jit::Method& method,
                               const std::vector<at::Tensor>& inputs) {
    std::optional<AutocastScope> autocast;
    if (autocast_) autocast.emplace(device_.type(), dtype_);
    FusionScope fusion(fuse_);
    std::vector<c10::IValue> arguments(inputs.begin(), inputs.end());
    c10::IValue output = method(arguments);
    std::vector<at::Tensor> outputs;
    if (output.isTensor()) {
      outputs.push_back(output.toTensor());
    } else if (output.isTuple()) {
      for (const auto& element : output.toTupleRef().elements()) {
        outputs.push_back(element.toTensor());
      }
    } else if (output.isTensorList()) {
      for (const at::Tensor& tensor : output.toTensorVector()) outputs.push_back(tensor);
    } else {
      throw std::runtime_error("the model returned " + output.tagKind() +
                               "; expected a tensor or a tuple of tensors");
    }
    return outputs;
  }

  std::vector<std::pair<std::string, at::Tensor>> named_tensors() const override {
    std::vector<std::pair<std::string, at::Tensor>> result;
    if (frozen_) {
      // Freezing turned the weights into constants of the graph; their names are gone.
      int index = 0;
      for (const torch::jit::Node* node : module_.get_method("forward").graph()->nodes()) {
        if (node->kind() != c10::prim::Constant) continue;
        const std::optional<c10::IValue> value = torch::jit::toIValue(node->output());
        if (value && value->isTensor()) {
          result.emplace_back(fmt::format("constant.{}", index++), value->toTensor());
        }
      }
      return result;
    }
    for (const auto& item : module_.named_parameters(true))
      result.emplace_back(item.name, item.value);
    for (const auto& item : module_.named_buffers(true)) result.emplace_back(item.name, item.value);
    return result;
  }

  c10::Device device() const override { return device_; }

  // kFused: freezing folds the weights into the graph as constants, so the JIT's frozen-graph
  // passes can fold and pre-transpose them; on the CPU, with the graph in its own dtype (no
  // autocast at run time, under which the fused partitions were measured slower), the matrix
  // products and the element-wise work around them run as oneDNN Graph partitions.
  // kOneDnn: the linear layers become oneDNN primitives where oneDNN runs this dtype on this CPU,
  // and in bf16 attention runs the engine's kernel (graph_rewrites.h). docs/speed.md has the
  // measurements behind both. With model.quantize int8 the graph is frozen first (no numeric
  // rewrites) and its linear layers run in int8 (int8_linear.h); layers too small for it, and in
  // bf16 attention, are routed as above.
  void prepare_for_inference() override {
    if (graph_ == GraphMode::kFused) {
      module_ = torch::jit::freeze(module_, std::nullopt, /*optimize_numerics=*/true);
      frozen_ = true;
#if AT_MKLDNN_ENABLED()
      // fp32 only: the bf16 Gemma graph fails in oneDNN Graph ("could not add op to the
      // graph"), and bf16 XLM-R gained nothing from it (docs/speed.md).
      if (device_.is_cpu() && dtype_ == c10::kFloat) {
        register_onednn_fusion();
        fuse_ = true;
      }
#endif
      return;
    }
    if (graph_ != GraphMode::kOneDnn || !device_.is_cpu()) return;
    if (int8_linear_) {
      module_ = torch::jit::freeze_module(module_);
      frozen_ = true;
    }
    // Every method of the graph: forward, and the ones a bundle traces beside it (model.h).
    for (const torch::jit::Method& method : module_.get_methods()) {
      torch::jit::GraphFunction& function = torch::jit::toGraphFunction(method.function());
      route_graph(*function.graph(), method.name());
      function.clear_optimized_graphs();
    }
  }

  void route_graph(torch::jit::Graph& graph, const std::string& name) {
    if (int8_linear_) {
      c10::InferenceMode inference;
      const int layers = route_linear_through_int8(graph, dtype_);
      spdlog::debug("model.quantize int8: {} linear layers of {} run in int8", layers, name);
    }
    if (onednn_linear_runs(dtype_)) {
      const int layers = route_linear_through_onednn(graph);
      spdlog::debug("model.graph onednn: {} linear layers of {} run as oneDNN primitives", layers,
                    name);
    }
    // ENGINE_ATTENTION=aten keeps ATen's attention, for measuring the kernel against it.
    const char* attention = std::getenv("ENGINE_ATTENTION");
    const bool keep_aten = attention != nullptr && std::string(attention) == "aten";
    if (dtype_ == c10::kBFloat16 && padded_attention_kernel_available() && !keep_aten) {
      const int layers = route_attention_through_engine(graph);
      spdlog::debug("model.graph onednn: {} attention layers of {} run the engine's bf16 kernel",
                    layers, name);
    }
  }

  // Casts floating-point parameters and buffers one at a time: Module::to(dtype) would also cast
  // integer buffers such as position ids, and a whole-module copy doubles the peak.
  void cast_floating_point(const ModelLoadOptions& options) {
    const auto cast = [&](const std::string& name, const at::Tensor& value) {
      if (!value.is_floating_point()) return;
      // A graph traced in its dtype holds every tensor in it already; only its table may move.
      if (options.graph_in_dtype && name != options.embedding_parameter) return;
      const c10::ScalarType dtype = kept_dtype(name, value, options);
      // An int8 table is quantised with its row scale (embedding_table.h), not cast.
      if (dtype == c10::kChar) return;
      if (value.scalar_type() != dtype) value.set_data(value.to(dtype));
    };
    for (const auto& item : module_.named_parameters(true)) cast(item.name, item.value);
    for (const auto& item : module_.named_buffers(true)) cast(item.name, item.value);
  }

 private:
  torch::jit::Module module_;
  c10::Device device_;
  c10::ScalarType dtype_;
  GraphMode graph_;
  bool int8_linear_;
  bool autocast_;  // run-time autocast, for a graph traced in fp32 run in a lower precision
  bool frozen_ = false;
  bool fuse_ = false;
};

}  // namespace

c10::ScalarType kept_dtype(const std::string& name, const at::Tensor& value,
                           const ModelLoadOptions& options) {
  if (name == options.embedding_parameter && options.embedding_dtype) {
    return *options.embedding_dtype;
  }
  if (value.dim() <= 1 || name == options.embedding_scale) return c10::kFloat;
  return options.dtype;
}

namespace {

// model.quantize int8 is a rewrite of TorchScript graphs, so its requirements are checked here,
// after the format's own refusals (a compiled package refuses int8 on any CPU).
void check_int8_linear_runs(const ModelLoadOptions& options) {
  if (!options.int8_linear) return;
  check<ConfigError>(options.device.is_cpu(),
                     "model.quantize: int8 runs on the CPU only (oneDNN's int8 kernels), but "
                     "model.device is {}; on a GPU use model.dtype: fp16 or bf16",
                     options.device.str());
  check<ConfigError>(int8_linear_available(),
                     "model.quantize: int8 needs a CPU with VNNI (AVX-512 VNNI or AVX-VNNI) and "
                     "a LibTorch built with oneDNN, and this machine lacks one of them; use "
                     "model.quantize: none");
}

}  // namespace

std::unique_ptr<Model> load_torchscript_model(const Manifest& manifest,
                                              const ModelLoadOptions& options) {
  check_int8_linear_runs(options);
  const std::string path = manifest.model_path();
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, options.device);
  } catch (const std::exception& error) {
    std::string message = error.what();
    message = message.substr(0, message.find('\n'));
    throw ConfigError(
        fmt::format("model file '{}' cannot be loaded as TorchScript: {}", path, message));
  }
  module.eval();
  auto model = std::make_unique<TorchScriptModel>(std::move(module), options.device, options.dtype,
                                                  options.graph, !options.graph_in_dtype,
                                                  options.int8_linear);
  model->cast_floating_point(options);
  return model;
}

}  // namespace engine
