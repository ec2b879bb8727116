// Elementwise float math on 16 lanes of AVX-512 (exp, erf, GELU, stores in bf16 and fp16), shared
// by the engine's CPU kernels (cpu_attention.cc, int8_linear.cc). Each function carries its target
// attribute, so a caller compiled for a superset of these features inlines it, and callers check
// cpu_has_avx512() before they take these paths.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "engine/common/cpu_features.h"

namespace engine {

#define ENGINE_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

inline bool cpu_has_avx512() { return cpu_isa() >= CpuIsa::kAvx512; }

// exp(x) to fp32 rounding: x = n·ln2 + r, |r| <= ln2/2, a degree-6 polynomial of r, and 2^n put
// into the exponent. x is clamped to [-87, 88.3], so the result is never 0 below or inf above,
// only very small or very large.
ENGINE_AVX512 inline __m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.3f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187045e-06f), r);
  __m512 p = _mm512_set1_ps(1.3981999507e-3f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512i exponent =
      _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(exponent));
}

// 1/d to within a few units of fp32 rounding: the 14-bit estimate and one Newton step, a
// fraction of what a division costs on 512-bit vectors.
ENGINE_AVX512 inline __m512 reciprocal16(__m512 d) {
  const __m512 r = _mm512_rcp14_ps(d);
  return _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));
}

// erf(x) within 1.5e-7 (Abramowitz and Stegun 7.1.26): 1 - t·P(t)·exp(-x²), t = 1/(1 + p|x|),
// with the sign of x.
ENGINE_AVX512 inline __m512 erf16(__m512 x) {
  const __m512 magnitude = _mm512_abs_ps(x);
  const __m512 t =
      reciprocal16(_mm512_fmadd_ps(magnitude, _mm512_set1_ps(0.3275911f), _mm512_set1_ps(1.0f)));
  __m512 p = _mm512_set1_ps(1.061405429f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
  p = _mm512_mul_ps(p, t);
  const __m512 e = exp16(_mm512_mul_ps(_mm512_mul_ps(magnitude, magnitude), _mm512_set1_ps(-1.0f)));
  const __m512 positive = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));
  // The sign bit of x on the result.
  const __m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN));
  return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(positive), sign));
}

// aten::gelu(x, approximate="none"): x/2 · (1 + erf(x/√2)).
ENGINE_AVX512 inline __m512 gelu_erf16(__m512 x) {
  const __m512 half = _mm512_mul_ps(x, _mm512_set1_ps(0.5f));
  const __m512 e = erf16(_mm512_mul_ps(x, _mm512_set1_ps(0.70710678118654752f)));
  return _mm512_fmadd_ps(half, e, half);
}

// aten::gelu(x, approximate="tanh"): x/2 · (1 + tanh(√(2/π)·(x + 0.044715·x³))), with
// tanh(y) = 1 - 2/(exp(2y) + 1).
ENGINE_AVX512 inline __m512 gelu_tanh16(__m512 x) {
  const __m512 cube = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
  const __m512 y = _mm512_mul_ps(_mm512_fmadd_ps(cube, _mm512_set1_ps(0.044715f), x),
                                 _mm512_set1_ps(0.79788456080286536f));
  const __m512 e = exp16(_mm512_add_ps(y, y));
  const __m512 tanh = _mm512_sub_ps(
      _mm512_set1_ps(1.0f),
      _mm512_mul_ps(_mm512_set1_ps(2.0f), reciprocal16(_mm512_add_ps(e, _mm512_set1_ps(1.0f)))));
  const __m512 half = _mm512_mul_ps(x, _mm512_set1_ps(0.5f));
  return _mm512_fmadd_ps(half, tanh, half);
}

// 16 floats as bf16, rounded to nearest with ties to even as c10::BFloat16 rounds (a NaN stays a
// NaN), without needing AVX-512 BF16.
ENGINE_AVX512 inline __m256i to_bf16x16(__m512 x) {
  const __m512i bits = _mm512_castps_si512(x);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i rounded = _mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7FFF)));
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  rounded = _mm512_mask_mov_epi32(rounded, nan, _mm512_set1_epi32(0x7FC00000));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(rounded, 16));
}

ENGINE_AVX512 inline __m256i to_fp16x16(__m512 x) {
  return _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}

}  // namespace engine
