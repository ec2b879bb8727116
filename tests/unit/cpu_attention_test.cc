// engine::padded_attention against ATen's scaled_dot_product_attention in fp32 on the same bf16
// inputs: the real rows within bf16's rounding, padding rows zero, other masks passed to ATen.
#include "engine/runtime/cpu_attention.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/csrc/jit/ir/irparser.h>
#include <torch/script.h>

#include <vector>

#include "engine/runtime/graph_rewrites.h"

namespace engine {
namespace {

struct Inputs {
  at::Tensor q, k, v;
};

// [batch, heads, length, dim] views of a [batch, length, heads, dim] tensor, as HF makes them.
Inputs random_inputs(int64_t batch, int64_t heads, int64_t length, int64_t dim) {
  const auto make = [&] {
    return at::randn({batch, length, heads, dim}).to(at::kBFloat16).transpose(1, 2);
  };
  return {make(), make(), make()};
}

// HF's additive padding mask: [batch, 1, length, length], 0 where kept, the dtype's lowest value
// where a key is padding.
at::Tensor padding_mask(const std::vector<int64_t>& lengths, int64_t length, at::ScalarType dtype) {
  const auto batch = static_cast<int64_t>(lengths.size());
  const at::Tensor kept = at::arange(length).unsqueeze(0) < at::tensor(lengths).unsqueeze(1);
  const double lowest = dtype == at::kBFloat16 ? -3.38e38 : -3.4e38;
  return at::zeros({batch, 1, 1, length})
      .masked_fill(kept.logical_not().view({batch, 1, 1, length}), lowest)
      .to(dtype)
      .expand({batch, 1, length, length})
      .contiguous();
}

at::Tensor fp32_reference(const Inputs& in, const at::Tensor& mask) {
  return at::scaled_dot_product_attention(in.q.to(at::kFloat), in.k.to(at::kFloat),
                                          in.v.to(at::kFloat), mask.to(at::kFloat));
}

class PaddedAttention : public ::testing::TestWithParam<int64_t> {
 protected:
  void SetUp() override {
    if (!padded_attention_kernel_available()) GTEST_SKIP() << "this CPU has no AVX-512 BF16";
    at::manual_seed(7);
  }
};

TEST_P(PaddedAttention, RealRowsMatchFp32AttentionAndPaddingRowsAreZero) {
  const int64_t dim = GetParam();
  const std::vector<int64_t> lengths = {37, 1, 16, 33, 24};
  const int64_t length = 37;
  const Inputs in = random_inputs(5, 3, length, dim);
  for (const at::ScalarType mask_dtype : {at::kBFloat16, at::kFloat}) {
    const at::Tensor mask = padding_mask(lengths, length, mask_dtype);
    const at::Tensor out = padded_attention(in.q, in.k, in.v, mask, std::nullopt);
    ASSERT_EQ(out.sizes(), in.q.sizes());
    ASSERT_EQ(out.scalar_type(), at::kBFloat16);
    const at::Tensor reference = fp32_reference(in, mask);
    const at::Tensor aten_bf16 = at::scaled_dot_product_attention(in.q, in.k, in.v, mask);
    for (size_t b = 0; b < lengths.size(); ++b) {
      const auto i = static_cast<int64_t>(b);
      const at::Tensor real = out[i].narrow(1, 0, lengths[b]).to(at::kFloat);
      const double error =
          (real - reference[i].narrow(1, 0, lengths[b])).abs().max().item<double>();
      const double aten_error = (aten_bf16[i].narrow(1, 0, lengths[b]).to(at::kFloat) -
                                 reference[i].narrow(1, 0, lengths[b]))
                                    .abs()
                                    .max()
                                    .item<double>();
      // Within bf16's rounding of the output (values here are below 4), and no worse than ATen's
      // own bf16 attention by more than one rounding step.
      EXPECT_LT(error, 2e-2) << "sequence " << b << ", head_dim " << dim;
      EXPECT_LE(error, aten_error + 1.6e-2) << "sequence " << b;
      if (lengths[b] < length) {
        EXPECT_EQ(out[i].narrow(1, lengths[b], length - lengths[b]).abs().max().item<float>(), 0)
            << "padding rows of sequence " << b;
      }
    }
  }
}

TEST_P(PaddedAttention, WithoutAMaskEveryRowAttendsToAllKeys) {
  const Inputs in = random_inputs(2, 2, 19, GetParam());
  const at::Tensor out = padded_attention(in.q, in.k, in.v, std::nullopt, 0.3);
  const at::Tensor reference = at::scaled_dot_product_attention(
      in.q.to(at::kFloat), in.k.to(at::kFloat), in.v.to(at::kFloat), std::nullopt, 0.0, false, 0.3);
  EXPECT_LT((out.to(at::kFloat) - reference).abs().max().item<double>(), 2e-2);
}

INSTANTIATE_TEST_SUITE_P(HeadDims, PaddedAttention, ::testing::Values(16, 32, 64, 80, 128));

TEST(PaddedAttentionFallback, AMaskThatIsNotKeyPaddingGoesToATenUnchanged) {
  at::manual_seed(3);
  const Inputs in = random_inputs(2, 2, 12, 64);
  // Causal: rows differ, so it is no key-padding mask.
  const at::Tensor causal = at::zeros({12, 12})
                                .masked_fill(at::ones({12, 12}, at::kBool).triu(1), -INFINITY)
                                .to(at::kBFloat16)
                                .expand({2, 1, 12, 12});
  const at::Tensor out = padded_attention(in.q, in.k, in.v, causal, std::nullopt);
  EXPECT_TRUE(at::equal(out, at::scaled_dot_product_attention(in.q, in.k, in.v, causal)));
  // Not 0 or masked: a bias.
  const at::Tensor bias = at::randn({2, 1, 12, 12}).to(at::kBFloat16);
  EXPECT_TRUE(at::equal(padded_attention(in.q, in.k, in.v, bias, std::nullopt),
                        at::scaled_dot_product_attention(in.q, in.k, in.v, bias)));
  // fp32 inputs.
  const at::Tensor q = in.q.to(at::kFloat), k = in.k.to(at::kFloat), v = in.v.to(at::kFloat);
  EXPECT_TRUE(at::equal(padded_attention(q, k, v, std::nullopt, std::nullopt),
                        at::scaled_dot_product_attention(q, k, v)));
}

TEST(PaddedAttentionFallback, AMaskChangedInPlaceIsCheckedAgain) {
  if (!padded_attention_kernel_available()) GTEST_SKIP() << "this CPU has no AVX-512 BF16";
  const Inputs in = random_inputs(1, 2, 8, 32);
  at::Tensor mask = padding_mask({8}, 8, at::kBFloat16);
  const at::Tensor full = padded_attention(in.q, in.k, in.v, mask, std::nullopt);
  mask.narrow(3, 5, 3).fill_(-3.38e38);  // same tensor, now 5 real keys
  const at::Tensor five = padded_attention(in.q, in.k, in.v, mask, std::nullopt);
  EXPECT_FALSE(at::equal(full, five)) << "the memo of the first mask was used for the second";
  EXPECT_EQ(five.narrow(2, 5, 3).abs().max().item<float>(), 0);
}

TEST(GraphRewrites, AttentionWithoutDropoutOrCausalMaskIsRouted) {
  const std::string source = R"IR(
graph(%q : Tensor, %k : Tensor, %v : Tensor, %mask : Tensor):
  %dropout : float = prim::Constant[value=0.]()
  %causal_false : bool = prim::Constant[value=0]()
  %causal_true : bool = prim::Constant[value=1]()
  %none : NoneType = prim::Constant()
  %a : Tensor = aten::scaled_dot_product_attention(%q, %k, %v, %mask, %dropout, %causal_false, %none, %causal_false)
  %b : Tensor = aten::scaled_dot_product_attention(%q, %k, %v, %none, %dropout, %causal_true, %none, %causal_false)
  %out : (Tensor, Tensor) = prim::TupleConstruct(%a, %b)
  return (%out))IR";
  auto graph = std::make_shared<torch::jit::Graph>();
  torch::jit::parseIR(source, graph.get());
  EXPECT_EQ(route_attention_through_engine(*graph), 1);
  int routed = 0, kept = 0;
  for (const torch::jit::Node* node : graph->nodes()) {
    routed += node->kind() == c10::Symbol::fromQualString(kPaddedAttentionOp);
    kept += node->kind() == c10::Symbol::fromQualString("aten::scaled_dot_product_attention");
  }
  EXPECT_EQ(routed, 1);
  EXPECT_EQ(kept, 1) << "the causal one stays ATen's";
}

}  // namespace
}  // namespace engine
