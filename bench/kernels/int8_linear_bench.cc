// The products behind model.quantize int8, one layer at a time: oneDNN's fp32 and bf16 linear
// primitives against engine::quantize_u8_rows + engine::int8_linear on the same random layer, and
// the error of each against an fp64 product. Prints a markdown table; docs/speed.md keeps a run.
//
//   build/bench/int8_linear_bench [--rows 4096] [--threads 2] [--repeats 10]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

#include "engine/runtime/int8_linear.h"

namespace {

double best_ms(const std::function<void()>& run, int repeats) {
  run();
  double best = 1e300;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    run();
    best = std::min(
        best, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                  .count());
  }
  return best;
}

at::Tensor onednn_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  static const c10::OperatorHandle op =
      c10::Dispatcher::singleton().findSchemaOrThrow("mkldnn::_linear_pointwise", "");
  torch::jit::Stack stack{
      x, w, b, std::string("none"), c10::List<std::optional<at::Scalar>>(), c10::IValue()};
  op.callBoxed(stack);
  return stack[0].toTensor();
}

// The product alone with one input scale for the whole tensor and the bias and bf16 output done
// inside oneDNN: what model.quantize int8 ran before scales per row, for comparison.
at::Tensor per_tensor_product(const at::Tensor& q, const engine::PackedInt8Linear& packed) {
  static const c10::OperatorHandle op =
      c10::Dispatcher::singleton().findSchemaOrThrow("onednn::qlinear_pointwise", "");
  torch::jit::Stack stack{q,
                          0.01,
                          int64_t{128},
                          packed.weight,
                          packed.scale,
                          at::zeros({packed.scale.size(0)}, at::kLong),
                          packed.bias,
                          1.0,
                          int64_t{0},
                          at::kBFloat16,
                          std::string("none"),
                          c10::List<std::optional<at::Scalar>>(),
                          std::string()};
  op.callBoxed(stack);
  return stack[0].toTensor();
}

double relative_error(const at::Tensor& y, const at::Tensor& reference) {
  return ((y.to(at::kDouble) - reference).norm() / reference.norm()).item<double>();
}

}  // namespace

int main(int argc, char** argv) {
  int64_t rows = 4096;
  int threads = 2, repeats = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--rows") == 0)
      rows = std::atoll(argv[i + 1]);
    else if (std::strcmp(argv[i], "--threads") == 0)
      threads = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--repeats") == 0)
      repeats = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown option %s; options: --rows N --threads N --repeats N\n",
                   argv[i]);
      return 2;
    }
  }
  at::set_num_threads(threads);
  if (!engine::int8_linear_available()) {
    std::fprintf(stderr, "int8_linear is not available on this CPU or LibTorch\n");
    return 1;
  }
  at::manual_seed(0);
  std::printf("rows %lld, %d threads, best of %d\n\n", static_cast<long long>(rows), threads,
              repeats);
  std::printf(
      "| in → out | fp32 ms | bf16 ms | quantize ms | int8 ms (GFLOP/s) | int8 + GELU ms | "
      "int8 per-tensor ms | error fp32 / bf16 / int8 |\n|---|---|---|---|---|---|---|---|\n");
  for (const auto& [in, out] : std::vector<std::pair<int64_t, int64_t>>{
           {768, 768}, {768, 3072}, {3072, 768}, {1024, 1024}, {1024, 4096}}) {
    const at::Tensor x = at::randn({rows, in});
    const at::Tensor w = at::randn({out, in}) / std::sqrt(static_cast<double>(in));
    const at::Tensor b = at::randn({out}) * 0.1;
    const at::Tensor reference =
        at::linear(x.to(at::kDouble), w.to(at::kDouble), b.to(at::kDouble));
    const at::Tensor xb = x.to(at::kBFloat16), wb = w.to(at::kBFloat16), bb = b.to(at::kBFloat16);
    const double fp32 = best_ms([&] { onednn_linear(x, w, b); }, repeats);
    const double bf16 = best_ms([&] { onednn_linear(xb, wb, bb); }, repeats);
    const engine::PackedInt8Linear packed = engine::pack_int8_linear(w, b);
    const double quantize = best_ms([&] { engine::quantize_u8_rows(xb); }, repeats);
    const auto [q, scale, zero] = engine::quantize_u8_rows(xb);
    const double int8 = best_ms(
        [&] { engine::int8_linear(q, scale, zero, packed, "none", "", at::kBFloat16); }, repeats);
    const double with_gelu = best_ms(
        [&] { engine::int8_linear(q, scale, zero, packed, "gelu", "", at::kBFloat16); }, repeats);
    const double per_tensor = best_ms([&] { per_tensor_product(q, packed); }, repeats);
    const at::Tensor y8 = engine::int8_linear(q, scale, zero, packed, "none", "", at::kFloat);
    const double gflop = 2.0 * static_cast<double>(rows * in * out) / 1e9;
    std::printf("| %lld → %lld | %.2f | %.2f | %.2f | %.2f (%.0f) | %.2f | %.2f | %.4f / %.4f / %.4f |\n",
                static_cast<long long>(in), static_cast<long long>(out), fp32, bf16, quantize, int8,
                gflop / int8 * 1e3, with_gelu, per_tensor, relative_error(onednn_linear(x, w, b), reference),
                relative_error(onednn_linear(xb, wb, bb), reference),
                relative_error(y8, reference));
  }
  return 0;
}
