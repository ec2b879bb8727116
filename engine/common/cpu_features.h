// What this CPU offers the engine's kernels, detected once, and the ceiling a user may put on it.
//
// ENGINE_MAX_CPU_ISA=avx2|avx512|avx512_vnni|avx512_bf16|amx makes the engine behave as on a CPU
// of that class: the engine's own kernels and checks see no feature above it, and
// apply_cpu_isa_ceiling() tells LibTorch's kernels (ATEN_CPU_CAPABILITY), oneDNN
// (ONEDNN_MAX_CPU_ISA) and MKL (MKL_ENABLE_INSTRUCTIONS) the same, unless those are set already.
// It serves two uses: the test suite runs as on an AVX2-only CPU on a machine with AVX-512
// (tools/test.sh), and the ranks of a job on mixed machines compute with the same instructions.
// Every check of a CPU feature in the engine goes through this header.
#pragma once

#include <optional>
#include <string>

namespace engine {

// The classes users' CPUs fall in, each including the ones before it.
enum class CpuIsa {
  kBaseline,    // below AVX2 + FMA: LibTorch's default kernels
  kAvx2,        // AVX2 + FMA (AMD Zen 1-3, Intel Haswell to Comet Lake)
  kAvx512,      // + AVX-512 F, BW, VL, DQ (Intel Skylake-SP)
  kAvx512Vnni,  // + AVX-512 VNNI (Intel Cascade Lake, Ice Lake)
  kAvx512Bf16,  // + AVX-512 BF16 (AMD Zen 4/5, Intel Cooper Lake)
  kAmx,         // + AMX tiles for bf16 and int8 (Intel Sapphire Rapids and later)
};

// Whether the CPU has `feature`, named as GCC's -m<feature> flag (avx2, fma, avx512f, avx512bw,
// avx512vl, avx512dq, avx512vnni, avxvnni, avx512bf16, avx512fp16, amx-tile, amx-bf16, amx-int8,
// sse4.2, avx, f16c), under the ceiling. nullopt: a name this engine does not know.
std::optional<bool> cpu_has(const std::string& feature);

// The highest class this CPU reaches, under the ceiling.
CpuIsa cpu_isa();
// "avx2", "avx512", "avx512_vnni", "avx512_bf16", "amx", or "baseline".
std::string cpu_isa_name(CpuIsa isa);
std::string cpu_isa_name();

// The features present, under the ceiling, as GCC names them, separated by spaces: for logs,
// `engine check` and benchmark rows.
std::string cpu_feature_list();

// The ceiling ENGINE_MAX_CPU_ISA sets, or nullopt when it is unset. Throws ConfigError naming the
// variable and the values it takes when it holds anything else.
std::optional<CpuIsa> cpu_isa_ceiling();

// Passes the ceiling on to LibTorch, oneDNN and MKL through their own variables, leaving any the
// environment sets already. Call at start, before LibTorch runs anything: each reads its
// variable once. Does nothing without a ceiling.
void apply_cpu_isa_ceiling();

}  // namespace engine
