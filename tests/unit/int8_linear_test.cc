// model.quantize int8's parts: the row quantiser against the formula computed with ATen, the
// int8 product against fp32 within the bound its rounding allows, rows independent of their batch,
// and the graph rewrite on a frozen module (what it routes, what it leaves, and that the module
// still computes the same).
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
  at::Tensor scale;       // [rows]
  at::Tensor zero_point;  // [rows]
};

// Per row: q = round(x · 255 / (hi - lo)) + round(-lo · 255 / (hi - lo)), lo = min(row, 0),
// hi = max(row, 0), ties to even, in fp32 arithmetic, as ATen computes it.
Expected expected_quantized(const at::Tensor& input) {
  const at::Tensor x = input.to(at::kFloat).reshape({-1, input.size(-1)});
  const at::Tensor lo = x.amin(1, true).clamp_max(0), hi = x.amax(1, true).clamp_min(0);
  const at::Tensor inverse = at::full_like(lo, 255.0f) / (hi - lo);
  const at::Tensor zero = (-lo * inverse).round();
  const at::Tensor q = (x * inverse).round().add(zero).clamp(0, 255).to(at::kByte);
  return {q.reshape(input.sizes()), ((hi - lo) / 255.0f).squeeze(1), zero.squeeze(1)};
}

TEST_F(Int8Linear, QuantisedRowsFollowTheFormulaExactly) {
  // Row lengths around the 16-wide vectors, and row counts over one parallel task's 65536 elements.
  for (const int64_t length : {1, 15, 16, 17, 768, 3072}) {
    for (const int64_t rows : {1, 3, 40}) {
      for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16, at::kHalf}) {
        // Centred, and shifted as a GELU's output is (mostly positive); rows of different ranges.
        for (const double shift : {0.0, 2.5}) {
          const at::Tensor x =
              ((at::randn({rows, length}) * at::rand({rows, 1}) * 6 + shift)).to(dtype);
          const auto [q, scale, zero_point] = quantize_u8_rows(x);
          ASSERT_EQ(q.scalar_type(), at::kByte);
          ASSERT_EQ(q.sizes(), x.sizes());
          ASSERT_EQ(scale.numel(), rows);
          const Expected expected = expected_quantized(x);
          EXPECT_TRUE(at::allclose(scale, expected.scale, 1e-6, 0)) << length << "x" << rows;
          EXPECT_TRUE(at::equal(zero_point, expected.zero_point)) << length << "x" << rows;
          EXPECT_TRUE(at::equal(q, expected.q)) << rows << " rows of " << length << ", " << dtype;
        }
      }
    }
  }
  // Ties round to even: -255..0 makes the scale 1 and the zero point 255. The second row, only
  // positive values: zero point 0, the whole range for them.
  const at::Tensor two = at::tensor({-0.5f, -1.5f, -2.5f, -255.0f, 0.0f,  //
                                     0.0f, 1.0f, 2.0f, 0.0f, 0.0f})
                             .reshape({2, 5});
  const auto [q, scale, zero_point] = quantize_u8_rows(two);
  EXPECT_TRUE(at::equal(scale, at::tensor({1.0f, 2.0f / 255}))) << scale;
  EXPECT_TRUE(at::equal(zero_point, at::tensor({255.0f, 0.0f}))) << zero_point;
  EXPECT_TRUE(at::equal(
      q, at::tensor({255, 253, 253, 0, 255, 0, 128, 255, 0, 0}, at::kByte).reshape({2, 5})))
      << q;
  // A row of zeros is exact at any scale, and a non-finite row gets scale 1 and zero point 0
  // rather than an undefined conversion, without touching the rows beside it.
  const at::Tensor odd = at::tensor({0.0f, 0.0f, 0.0f, 1.0f, std::numeric_limits<float>::infinity(),
                                     -2.0f, 0.0f, 1.0f, 2.0f})
                             .reshape({3, 3});
  const auto [q_odd, scale_odd, zero_odd] = quantize_u8_rows(odd);
  EXPECT_TRUE(at::equal(q_odd[0], at::zeros({3}, at::kByte))) << q_odd;
  EXPECT_TRUE(at::equal(scale_odd.slice(0, 0, 2), at::ones({2}))) << scale_odd;
  EXPECT_TRUE(at::equal(zero_odd.slice(0, 0, 2), at::zeros({2}))) << zero_odd;
  EXPECT_TRUE(at::equal(q_odd[2], at::tensor({0, 128, 255}, at::kByte))) << q_odd;
  // Non-contiguous and 3-D inputs keep their shape; rows are along the last dimension.
  const at::Tensor strided = at::randn({4, 6, 8}).transpose(0, 2);
  const auto [q3, scale3, zero3] = quantize_u8_rows(strided);
  EXPECT_EQ(q3.sizes(), strided.sizes());
  EXPECT_EQ(scale3.numel(), 8 * 6);
  EXPECT_TRUE(at::equal(q3, expected_quantized(strided).q));
}

// Each product term is off by at most |x|·δw + |ŵ|·δx, δw half a step, δx one of its row's; the
// output within that bound summed over the inner dimension, and in practice far inside it.
TEST_F(Int8Linear, ProductsStayWithinTheirRoundingBound) {
  const int64_t rows = 37, in = 96, out = 83;  // 83: five 16-wide vectors and a tail of 3
  const at::Tensor x = at::randn({rows, in}) * at::rand({rows, 1}) * 4;
  const at::Tensor w = at::randn({out, in}) * 0.1;
  const at::Tensor b = at::randn({out});
  const PackedInt8Linear packed = pack_int8_linear(w, b);
  EXPECT_EQ(packed.weight.scalar_type(), at::kChar);
  EXPECT_EQ(packed.weight.numel(), out * in);
  const auto [q, x_scale, x_zero] = quantize_u8_rows(x);
  const at::Tensor reference = at::linear(x, w, b);
  // An input's rounding is half a step, but the largest one may lose a whole step to the clamp
  // at 255 (its rounding and the zero point's both rounded up).
  const at::Tensor x_step = x_scale.unsqueeze(1).expand({rows, in});
  const at::Tensor w_step = packed.scale.unsqueeze(1) / 2;
  const at::Tensor bound =
      at::linear(x.abs(), w_step.expand({out, in})) + at::linear(x_step, w.abs() + w_step) + 1e-4;
  const at::Tensor fp32 = int8_linear(q, x_scale, x_zero, packed, "none", "", at::kFloat);
  const at::Tensor error = (fp32 - reference).abs();
  EXPECT_TRUE(error.le(bound).all().item<bool>())
      << "worst excess " << (error - bound).max().item<double>();
  const double relative = (error.norm() / reference.norm()).item<double>();
  EXPECT_LT(relative, 0.02) << "relative error of the whole product";
  EXPECT_GT(relative, 0.0) << "an int8 product that equals fp32 exactly was not quantised";
  // bf16 and fp16 outputs are the fp32 ones rounded to nearest, ties to even.
  for (const at::ScalarType dtype : {at::kBFloat16, at::kHalf}) {
    const at::Tensor y = int8_linear(q, x_scale, x_zero, packed, "none", "", dtype);
    ASSERT_EQ(y.scalar_type(), dtype);
    EXPECT_TRUE(at::equal(y, fp32.to(dtype))) << dtype;
  }
  // GELU on the way out, as aten::gelu computes it on the dequantised product: erf within 1.5e-7
  // (Abramowitz and Stegun 7.1.26) and tanh within about 1e-7, each times x/2, and fp32 rounding.
  for (const std::string approximate : {"none", "tanh"}) {
    const at::Tensor gelu =
        int8_linear(q, x_scale, x_zero, packed, "gelu", approximate, at::kFloat);
    // Against fp64: ATen's own fp32 GELU is off by up to 8e-7 here (its vectorised erf).
    const at::Tensor want = at::gelu(fp32.to(at::kDouble), approximate);
    const at::Tensor gelu_error = (gelu.to(at::kDouble) - want).abs();
    const at::Tensor allowed = fp32.abs() * 1e-7 + want.abs() * 1e-6 + 1e-7;
    EXPECT_TRUE(gelu_error.le(allowed).all().item<bool>())
        << approximate << ": worst excess " << (gelu_error - allowed).max().item<double>();
    EXPECT_TRUE(
        at::equal(int8_linear(q, x_scale, x_zero, packed, "gelu", approximate, at::kBFloat16),
                  gelu.to(at::kBFloat16)))
        << approximate;
  }
  // Inputs of three dimensions come back in three.
  const auto [q3, scale3, zero3] = quantize_u8_rows(x.view({1, rows, in}));
  PackedInt8Linear unbiased = packed;
  unbiased.bias = at::Tensor();
  EXPECT_EQ(int8_linear(q3, scale3, zero3, unbiased, "none", "", at::kFloat).sizes(),
            (std::vector<int64_t>{1, rows, out}));
  EXPECT_THROW(int8_linear(q, x_scale.slice(0, 1), x_zero, packed, "none", "", at::kFloat),
               c10::Error)
      << "one scale per row";
}

// A row's output does not depend on the rows beside it: each row alone gives the same bits as in
// a batch whose other rows have ranges a hundred times larger (a per-tensor scale would not).
TEST_F(Int8Linear, ARowsOutputDoesNotDependOnItsBatch) {
  const int64_t in = 64, out = 48;
  const PackedInt8Linear packed = pack_int8_linear(at::randn({out, in}) * 0.2, at::randn({out}));
  const at::Tensor batch = at::cat({at::randn({3, in}), at::randn({5, in}) * 100});
  const auto run = [&](const at::Tensor& x) {
    const auto [q, scale, zero] = quantize_u8_rows(x);
    return int8_linear(q, scale, zero, packed, "gelu", "", at::kBFloat16);
  };
  const at::Tensor together = run(batch);
  for (int64_t r = 0; r < batch.size(0); ++r) {
    EXPECT_TRUE(at::equal(run(batch.slice(0, r, r + 1)), together.slice(0, r, r + 1))) << r;
  }
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
