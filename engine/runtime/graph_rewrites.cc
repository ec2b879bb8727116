#include "engine/runtime/graph_rewrites.h"

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/Config.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>

#include "engine/runtime/cpu_attention.h"

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
    torch::jit::Value* result = linear->output();
    torch::jit::Node* gelu = nullptr;
    std::optional<c10::IValue> approximate;
    if (result->uses().size() == 1 && result->uses()[0].user->kind() == c10::aten::gelu &&
        result->uses()[0].offset == 0) {
      approximate = torch::jit::toIValue(result->uses()[0].user->input(1));
      if (approximate && approximate->isString()) gelu = result->uses()[0].user;
    }
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
    torch::jit::Value* fused = nullptr;
    if (gelu != nullptr) {
      fused = graph.insert(pointwise, {input, weight, bias, std::string("gelu"), scalars,
                                       approximate->toStringRef()});
      gelu->output()->replaceAllUsesWith(fused);
      gelu->destroy();
    } else {
      fused = graph.insert(pointwise,
                           {input, weight, bias, std::string("none"), scalars, c10::IValue()});
    }
    result->replaceAllUsesWith(fused);
    linear->destroy();
  }
  torch::jit::EliminateDeadCode(graph.block());
  return static_cast<int>(linears.size());
}

// Whether oneDNN's linear primitive runs `dtype` on this CPU (bf16 and fp16 need ISA support that
// oneDNN checks when the primitive is made); asked once per dtype.
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
