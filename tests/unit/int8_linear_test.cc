// model.quantize int8's parts: the input quantiser against the formula computed with ATen, the
// int8 product against fp32 within the bound its rounding allows, and the graph rewrite on a
// frozen module (what it routes, what it leaves, and that the module still computes the same).
#include "engine/runtime/int8_linear.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/script.h>

#include <cmath>
#include <limits>
#include <string>

#include "engine/runtime/graph_rewrites.h"

namespace engine {
namespace {

class Int8Linear : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!int8_linear_available()) GTEST_SKIP() << "this CPU or LibTorch runs no int8 products";
    at::manual_seed(11);
  }
};

struct Expected {
  at::Tensor q;
  double scale;
  int64_t zero_point;
};

// q = round(x · 255 / (hi - lo)) + round(-lo · 255 / (hi - lo)), lo = min(x, 0), hi = max(x, 0),
// ties to even, in fp32 arithmetic, as ATen computes it.
Expected expected_quantized(const at::Tensor& input) {
  const at::Tensor x = input.to(at::kFloat);
  const float lo = std::min(x.min().item<float>(), 0.0f);
  const float hi = std::max(x.max().item<float>(), 0.0f);
  const float inverse = 255.0f / (hi - lo);
  const float zero = std::nearbyint(-lo * inverse);
  return {(x * inverse).round().add(zero).clamp(0, 255).to(at::kByte), (hi - lo) / 255.0,
          static_cast<int64_t>(zero)};
}

TEST_F(Int8Linear, QuantisedInputsFollowTheFormulaExactly) {
  // Sizes around the 16-wide vectors and over the 65536-element parallel chunks.
  for (const int64_t n : {1, 15, 16, 17, 1000, 65536 * 3 + 5}) {
    for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
      // Centred, and shifted as a GELU's output is (mostly positive).
      for (const double shift : {0.0, 2.5}) {
        const at::Tensor x = (at::randn({n}) * 3 + shift).to(dtype);
        const auto [q, scale, zero_point] = quantize_u8(x);
        ASSERT_EQ(q.scalar_type(), at::kByte);
        ASSERT_EQ(q.sizes(), x.sizes());
        const Expected expected = expected_quantized(x);
        EXPECT_NEAR(scale, expected.scale, expected.scale * 1e-6) << n;
        EXPECT_EQ(zero_point, expected.zero_point) << n;
        EXPECT_TRUE(at::equal(q, expected.q)) << n << " elements of " << x.toString();
      }
    }
  }
  // Ties round to even: -255..0 makes the scale 1 and the zero point 255.
  const at::Tensor ties = at::tensor({-0.5f, -1.5f, -2.5f, -255.0f, 0.0f});
  const auto [q, scale, zero_point] = quantize_u8(ties);
  EXPECT_EQ(scale, 1.0);
  EXPECT_EQ(zero_point, 255);
  EXPECT_TRUE(at::equal(q, at::tensor({255, 253, 253, 0, 255}, at::kByte))) << q;
  // Only positive values: zero point 0, the whole range for them.
  const auto [positive, positive_scale, positive_zero] =
      quantize_u8(at::tensor({0.0f, 1.0f, 2.0f}));
  EXPECT_EQ(positive_zero, 0);
  EXPECT_TRUE(at::equal(positive, at::tensor({0, 128, 255}, at::kByte))) << positive;
  EXPECT_NEAR(positive_scale, 2.0 / 255, 1e-9);
  // A tensor of zeros is exact at any scale.
  const auto [zeros, zero_scale, zeros_zero] = quantize_u8(at::zeros({40}, at::kBFloat16));
  EXPECT_TRUE(at::equal(zeros, at::full({40}, zeros_zero, at::kByte)));
  EXPECT_GT(zero_scale, 0);
  // A non-finite input gets scale 1 and zero point 0 rather than an undefined conversion.
  const auto [infinite, infinite_scale, infinite_zero] =
      quantize_u8(at::tensor({1.0f, std::numeric_limits<float>::infinity(), -2.0f}));
  EXPECT_EQ(infinite_scale, 1.0);
  EXPECT_EQ(infinite_zero, 0);
  EXPECT_EQ(infinite.size(0), 3);
  // Non-contiguous and 3-D inputs keep their shape.
  const at::Tensor strided = at::randn({4, 6, 8}).transpose(0, 2);
  const auto [q3, scale3, zero3] = quantize_u8(strided);
  EXPECT_EQ(q3.sizes(), strided.sizes());
  EXPECT_TRUE(at::equal(q3, expected_quantized(strided).q));
}

// Each product term is off by at most |x|·δw + |ŵ|·δx, δw half a step, δx one; the
// output within that bound summed over the inner dimension, and in practice far inside it.
TEST_F(Int8Linear, ProductsStayWithinTheirRoundingBound) {
  const int64_t rows = 37, in = 96, out = 80;
  const at::Tensor x = at::randn({rows, in});
  const at::Tensor w = at::randn({out, in}) * 0.1;
  const at::Tensor b = at::randn({out});
  const PackedInt8Linear packed = pack_int8_linear(w, b);
  EXPECT_EQ(packed.weight.scalar_type(), at::kChar);
  EXPECT_EQ(packed.weight.numel(), out * in);
  const auto [q, x_scale, x_zero] = quantize_u8(x);
  const at::Tensor reference = at::linear(x, w, b);
  // An input's rounding is half a step, but the largest one may lose a whole step to the clamp
  // at 255 (its rounding and the zero point's both rounded up).
  const at::Tensor x_step = at::full({1, in}, x_scale);
  const at::Tensor w_step = packed.scale.unsqueeze(1) / 2;
  const at::Tensor bound = at::linear(x.abs(), w_step.expand({out, in})) +
                           at::linear(x_step.expand({rows, in}), w.abs() + w_step) + 1e-4;
  for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const at::Tensor y = int8_linear(q, x_scale, x_zero, packed.weight, packed.scale, packed.bias,
                                     "none", "", dtype);
    ASSERT_EQ(y.scalar_type(), dtype);
    ASSERT_EQ(y.sizes(), reference.sizes());
    const at::Tensor error = (y.to(at::kFloat) - reference).abs();
    // bf16 output adds its own rounding: 2^-8 of the value.
    const at::Tensor allowed = dtype == at::kFloat ? bound : bound + reference.abs() / 256;
    EXPECT_TRUE(error.le(allowed).all().item<bool>())
        << "worst excess " << (error - allowed).max().item<double>();
    const double relative = (error.norm() / reference.norm()).item<double>();
    EXPECT_LT(relative, 0.02) << "relative error of the whole product";
    EXPECT_GT(relative, 0.0) << "an int8 product that equals fp32 exactly was not quantised";
  }
  // GELU on the way out, as aten::gelu computes it on the dequantised product.
  const at::Tensor fp32 = int8_linear(q, x_scale, x_zero, packed.weight, packed.scale, packed.bias,
                                      "none", "", at::kFloat);
  for (const std::string approximate : {"none", "tanh"}) {
    const at::Tensor gelu = int8_linear(q, x_scale, x_zero, packed.weight, packed.scale,
                                        packed.bias, "gelu", approximate, at::kFloat);
    EXPECT_LT((gelu - at::gelu(fp32, approximate)).abs().max().item<double>(), 1e-4) << approximate;
  }
  // Inputs of three dimensions come back in three.
  const auto [q3, scale3, zero3] = quantize_u8(x.view({1, rows, in}));
  EXPECT_EQ(int8_linear(q3, scale3, zero3, packed.weight, packed.scale, std::nullopt, "none", "",
                        at::kFloat)
                .sizes(),
            (std::vector<int64_t>{1, rows, out}));
}

int count(const torch::jit::Graph& graph, const std::string& kind) {
  int n = 0;
  for (const torch::jit::Node* node : graph.nodes()) {
    n += node->kind() == c10::Symbol::fromQualString(kind);
  }
  return n;
}

// Two layers over one input (one quantisation), a GELU folded in, a two-output head and a table
// that is also an output layer's weight left as they are, and the same outputs within int8's
// rounding.
TEST_F(Int8Linear, TheRewriteRoutesLargeLayersAndLeavesHeadsAndTiedTables) {
  torch::jit::Module module("Tiny");
  module.register_parameter("w1", at::randn({64, 32}) * 0.2, false);
  module.register_parameter("b1", at::randn({64}), false);
  module.register_parameter("w2", at::randn({48, 32}) * 0.2, false);
  module.register_parameter("head", at::randn({2, 64}), false);
  module.register_parameter("table", at::randn({40, 64}), false);
  module.define(R"JIT(
def forward(self, x, ids):
    h = torch.gelu(torch.linear(x, self.w1, self.b1), approximate="tanh")
    g = torch.linear(x, self.w2, None)
    s = torch.linear(h, self.head, None)
    e = torch.embedding(self.table, ids)
    t = torch.linear(h, self.table, None)
    return (h, g, s, e, t)
)JIT");
  module.eval();
  const at::Tensor x = at::randn({5, 7, 32});
  const at::Tensor ids = at::randint(0, 40, {5, 7});
  const auto run = [&](torch::jit::Module& m) {
    return m.forward({x, ids}).toTupleRef().elements();
  };
  const auto expected = run(module);
  torch::jit::Module frozen = torch::jit::freeze_module(module);
  torch::jit::GraphFunction& forward =
      torch::jit::toGraphFunction(frozen.get_method("forward").function());
  EXPECT_EQ(route_linear_through_int8(*forward.graph(), at::kFloat), 2);
  EXPECT_EQ(count(*forward.graph(), kInt8LinearOp), 2);
  EXPECT_EQ(count(*forward.graph(), kQuantizeOp), 1) << "x is quantised once for both layers";
  EXPECT_EQ(count(*forward.graph(), "aten::linear"), 2) << "the head and the tied table stay";
  EXPECT_EQ(count(*forward.graph(), "aten::gelu"), 0) << "the GELU is folded into its layer";
  forward.clear_optimized_graphs();
  const auto outputs = run(frozen);
  for (size_t i = 0; i < expected.size(); ++i) {
    const at::Tensor want = expected[i].toTensor(), got = outputs[i].toTensor();
    ASSERT_EQ(got.sizes(), want.sizes()) << "output " << i;
    const double relative = ((got - want).norm() / want.norm()).item<double>();
    EXPECT_LT(relative, 0.03) << "output " << i;
    if (i < 2) {
      EXPECT_GT(relative, 0.0) << "output " << i << " was not quantised";
    }
  }
  EXPECT_TRUE(at::equal(outputs[3].toTensor(), expected[3].toTensor())) << "the lookup is exact";
}

}  // namespace
}  // namespace engine
