#include "engine/runtime/graph_rewrites.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Config.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>

#include "engine/runtime/cpu_attention.h"
#include "engine/runtime/int8_linear.h"

namespace engine {
namespace {

// Whether `value` is a constant equal to `expected` (None counts as false and 0).
bool constant_is(torch::jit::Value* value, const c10::IValue& expected) {
  const std::optional<c10::IValue> constant = torch::jit::toIValue(value);
  if (!constant) return false;
  if (constant->isNone()) return expected.isBool() ? !expected.toBool() : expected.toDouble() == 0;
  if (expected.isBool()) return constant->isBool() && constant->toBool() == expected.toBool();
  return constant->isDouble() && constant->toDouble() == expected.toDouble();
}

// The aten::gelu that is the only reader of `linear`'s output, with its `approximate` argument.
struct FollowingGelu {
  torch::jit::Node* node = nullptr;
  std::string approximate;
};

FollowingGelu following_gelu(torch::jit::Node* linear) {
  torch::jit::Value* result = linear->output();
  if (result->uses().size() != 1 || result->uses()[0].user->kind() != c10::aten::gelu ||
      result->uses()[0].offset != 0) {
    return {};
  }
  torch::jit::Node* gelu = result->uses()[0].user;
  const std::optional<c10::IValue> approximate = torch::jit::toIValue(gelu->input(1));
  if (!approximate || !approximate->isString()) return {};
  return {gelu, approximate->toStringRef()};
}

// Replaces `linear` (and the GELU folded into `fused`) by `fused`.
void replace_linear(torch::jit::Node* linear, const FollowingGelu& gelu, torch::jit::Value* fused) {
  if (gelu.node != nullptr) {
    gelu.node->output()->replaceAllUsesWith(fused);
    gelu.node->destroy();
  }
  linear->output()->replaceAllUsesWith(fused);
  linear->destroy();
}

}  // namespace

// LibTorch runs an fp32 aten::linear through MKL's sgemm, at under half of what oneDNN reaches on
// the same CPU (docs/speed.md); oneDNN's linear primitive takes the same dense weights. This pass
// replaces each aten::linear of the graph, before it first runs, by mkldnn::_linear_pointwise,
// with a following GELU folded into it as a post-op. The input and bias are cast to the weight's
// dtype first, as autocast would cast them (a no-op when they match), since oneDNN's primitive
// does not cast. Every call of a shape then runs the same kernel: the bits of a batch do not
// depend on what ran before it, unlike oneDNN Graph fusion (FusionScope). Traced graphs are flat
// once inlined, so only the top block is searched. Returns how many layers it rewrote.
int route_linear_through_onednn(torch::jit::Graph& graph) {
  const c10::Symbol pointwise = c10::Symbol::fromQualString("mkldnn::_linear_pointwise");
  torch::jit::Inline(graph);
  std::vector<torch::jit::Node*> linears;
  for (torch::jit::Node* node : graph.nodes()) {
    if (node->kind() == c10::aten::linear) linears.push_back(node);
  }
  for (torch::jit::Node* linear : linears) {
    const FollowingGelu gelu = following_gelu(linear);
    torch::jit::WithInsertPoint insert_point(linear);
    torch::jit::Value* weight = linear->input(1);
    torch::jit::Value* input = graph.insert(c10::aten::type_as, {linear->input(0), weight});
    torch::jit::Value* bias = linear->input(2);
    if (!bias->type()->cast<c10::NoneType>()) {
      bias = graph.insert(c10::aten::type_as, {bias, weight});
    }
    torch::jit::Value* scalars =
        graph.insertNode(graph.createList(c10::OptionalType::create(c10::NumberType::get()), {}))
            ->output();
    torch::jit::Value* fused =
        gelu.node != nullptr
            ? graph.insert(pointwise,
                           {input, weight, bias, std::string("gelu"), scalars, gelu.approximate})
            : graph.insert(pointwise,
                           {input, weight, bias, std::string("none"), scalars, c10::IValue()});
    replace_linear(linear, gelu, fused);
  }
  torch::jit::EliminateDeadCode(graph.block());
  return static_cast<int>(linears.size());
}

// Products smaller than this in either dimension stay in the model's dtype: they cost next to
// nothing, and a scoring head's output is the score itself.
constexpr int64_t kLeastInt8Features = 16;

// A constant node holding `tensor`. Graph::insertConstant refuses tensors without storage, such as
// oneDNN's packed ones; the node itself holds any tensor (the JIT's oneDNN passes make them so).
torch::jit::Value* insert_tensor_constant(torch::jit::Graph& graph, const at::Tensor& tensor) {
  torch::jit::Node* node = graph.create(c10::prim::Constant);
  node->t_(c10::attr::value, tensor);
  node->output()->setType(c10::TensorType::create(tensor));
  return graph.insertNode(node)->output();
}

int route_linear_through_int8(torch::jit::Graph& graph, c10::ScalarType dtype) {
  const c10::Symbol quantize = c10::Symbol::fromQualString(kQuantizeOp);
  const c10::Symbol int8_linear = c10::Symbol::fromQualString(kInt8LinearOp);
  torch::jit::Inline(graph);
  // A weight read by anything but a linear layer (an embedding table tied to an output layer)
  // is left alone: packing it would keep two copies.
  std::unordered_set<const c10::TensorImpl*> read_elsewhere;
  std::vector<torch::jit::Node*> linears;
  for (torch::jit::Node* node : graph.nodes()) {
    for (size_t i = 0; i < node->inputs().size(); ++i) {
      if (node->kind() == c10::aten::linear && i == 1) continue;
      const std::optional<c10::IValue> constant = torch::jit::toIValue(node->input(i));
      if (constant && constant->isTensor()) {
        read_elsewhere.insert(constant->toTensor().unsafeGetTensorImpl());
      }
    }
    if (node->kind() == c10::aten::linear) linears.push_back(node);
  }
  std::map<std::pair<const c10::TensorImpl*, const c10::TensorImpl*>, PackedInt8Linear> packs;
  std::unordered_map<torch::jit::Value*, torch::jit::Node*> quantized;  // input -> its quantize
  int rewritten = 0;
  for (torch::jit::Node* linear : linears) {
    const std::optional<c10::IValue> weight = torch::jit::toIValue(linear->input(1));
    if (!weight || !weight->isTensor()) continue;
    const at::Tensor& w = weight->toTensor();
    if (w.dim() != 2 || !w.is_floating_point() || w.size(0) < kLeastInt8Features ||
        w.size(1) < kLeastInt8Features || read_elsewhere.count(w.unsafeGetTensorImpl()) != 0) {
      continue;
    }
    std::optional<at::Tensor> bias;
    if (!linear->input(2)->type()->cast<c10::NoneType>()) {
      const std::optional<c10::IValue> constant = torch::jit::toIValue(linear->input(2));
      if (!constant || !constant->isTensor()) continue;
      bias = constant->toTensor();
    }
    // A weight shared by layers (with the same bias) is packed once.
    const auto key =
        std::make_pair(w.unsafeGetTensorImpl(), bias ? bias->unsafeGetTensorImpl() : nullptr);
    auto pack = packs.find(key);
    if (pack == packs.end()) pack = packs.emplace(key, pack_int8_linear(w, bias)).first;
    const FollowingGelu gelu = following_gelu(linear);
    torch::jit::WithInsertPoint insert_point(linear);
    torch::jit::Value* input = linear->input(0);
    auto known = quantized.find(input);
    if (known == quantized.end()) {
      // Nodes are visited in order, so the first linear layer to read an input precedes the rest.
      torch::jit::Node* node = graph.insertNode(graph.create(quantize, {input}, 3));
      node->output(0)->setType(c10::TensorType::get());
      node->output(1)->setType(c10::TensorType::get());
      node->output(2)->setType(c10::TensorType::get());
      known = quantized.emplace(input, node).first;
    }
    const PackedInt8Linear& packed = pack->second;
    torch::jit::Value* fused = graph.insert(
        int8_linear, {known->second->output(0), known->second->output(1), known->second->output(2),
                      insert_tensor_constant(graph, packed.weight),
                      graph.insertConstant(packed.scale), graph.insertConstant(packed.compensation),
                      packed.bias.defined() ? graph.insertConstant(packed.bias)
                                            : graph.insertConstant(c10::IValue()),
                      std::string(gelu.node != nullptr ? "gelu" : "none"),
                      std::string(gelu.node != nullptr ? gelu.approximate : ""), dtype});
    replace_linear(linear, gelu, fused);
    ++rewritten;
  }
  torch::jit::EliminateDeadCode(graph.block());
  return rewritten;
}

// Whether oneDNN's linear primitive runs `dtype` on this CPU (bf16 and fp16 need ISA support that
// oneDNN checks when the primitive is made); asked once per dtype.
void bound_onednn_caches() {
  const std::string entries = std::to_string(kOneDnnCacheEntries);
  ::setenv("LRU_CACHE_CAPACITY", entries.c_str(), /*overwrite=*/0);
  ::setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", entries.c_str(), /*overwrite=*/0);
}

bool onednn_linear_runs(c10::ScalarType dtype) {
#if AT_MKLDNN_ENABLED()
  static std::mutex mutex;
  static std::map<c10::ScalarType, bool> answers;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto known = answers.find(dtype);
  if (known != answers.end()) return known->second;
  bool runs = false;
  try {
    const c10::OperatorHandle op =
        c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_linear_pointwise", "");
    torch::jit::Stack stack{at::ones({2, 16}, at::TensorOptions().dtype(dtype)),
                            at::ones({4, 16}, at::TensorOptions().dtype(dtype)),
                            c10::IValue(),
                            std::string("none"),
                            c10::List<std::optional<at::Scalar>>(),
                            c10::IValue()};
    op.callBoxed(stack);
    runs = stack.size() == 1 && stack[0].isTensor() && stack[0].toTensor().size(1) == 4;
  } catch (const std::exception&) {
    runs = false;
  }
  answers.emplace(dtype, runs);
  return runs;
#else
  (void)dtype;
  return false;
#endif
}

// LibTorch's CPU attention runs bf16 through a reference matrix kernel where the CPU has no AMX
// (cpu_attention.h). Traced graphs are flat once inlined, so only the top block is searched.
int route_attention_through_engine(torch::jit::Graph& graph) {
  const c10::Symbol padded = c10::Symbol::fromQualString(kPaddedAttentionOp);
  torch::jit::Inline(graph);
  std::vector<torch::jit::Node*> attentions;
  for (torch::jit::Node* node : graph.nodes()) {
    if (node->kind() != c10::Symbol::fromQualString("aten::scaled_dot_product_attention")) continue;
    const size_t inputs = node->inputs().size();
    if (inputs < 7 || !constant_is(node->input(4), c10::IValue(0.0)) ||
        !constant_is(node->input(5), c10::IValue(false)) ||
        (inputs > 7 && !constant_is(node->input(7), c10::IValue(false)))) {
      continue;
    }
    attentions.push_back(node);
  }
  for (torch::jit::Node* node : attentions) {
    torch::jit::WithInsertPoint insert_point(node);
    torch::jit::Value* result = graph.insert(
        padded, {node->input(0), node->input(1), node->input(2), node->input(3), node->input(6)});
    node->output()->replaceAllUsesWith(result);
    node->destroy();
  }
  torch::jit::EliminateDeadCode(graph.block());
  return static_cast<int>(attentions.size());
}

}  // namespace engine
