#include "engine/common/cpu_features.h"

#include <cstdlib>
#include <string_view>
#include <vector>

#include "engine/common/error.h"

namespace engine {
namespace {

struct Feature {
  const char* name;  // GCC's -m<name>
  bool present;      // as detected, before the ceiling
  CpuIsa level;      // the lowest class that includes it
};

const std::vector<Feature>& detected_features() {
  static const std::vector<Feature> features = {
      {"sse4.2", static_cast<bool>(__builtin_cpu_supports("sse4.2")), CpuIsa::kBaseline},
      {"avx", static_cast<bool>(__builtin_cpu_supports("avx")), CpuIsa::kBaseline},
      {"f16c", static_cast<bool>(__builtin_cpu_supports("f16c")), CpuIsa::kBaseline},
      {"avx2", static_cast<bool>(__builtin_cpu_supports("avx2")), CpuIsa::kAvx2},
      {"fma", static_cast<bool>(__builtin_cpu_supports("fma")), CpuIsa::kAvx2},
      {"avx512f", static_cast<bool>(__builtin_cpu_supports("avx512f")), CpuIsa::kAvx512},
      {"avx512bw", static_cast<bool>(__builtin_cpu_supports("avx512bw")), CpuIsa::kAvx512},
      {"avx512vl", static_cast<bool>(__builtin_cpu_supports("avx512vl")), CpuIsa::kAvx512},
      {"avx512dq", static_cast<bool>(__builtin_cpu_supports("avx512dq")), CpuIsa::kAvx512},
      // AVX-VNNI is the VEX form of VNNI (Alder Lake and later); the AVX2 class is taken to be
      // the plain AVX2 + FMA of AMD Zen 1-3 and older Intel parts, so it sits with VNNI.
      {"avxvnni", static_cast<bool>(__builtin_cpu_supports("avxvnni")), CpuIsa::kAvx512Vnni},
      {"avx512vnni", static_cast<bool>(__builtin_cpu_supports("avx512vnni")), CpuIsa::kAvx512Vnni},
      {"avx512bf16", static_cast<bool>(__builtin_cpu_supports("avx512bf16")), CpuIsa::kAvx512Bf16},
      {"avx512fp16", static_cast<bool>(__builtin_cpu_supports("avx512fp16")), CpuIsa::kAmx},
      {"amx-tile", static_cast<bool>(__builtin_cpu_supports("amx-tile")), CpuIsa::kAmx},
      {"amx-bf16", static_cast<bool>(__builtin_cpu_supports("amx-bf16")), CpuIsa::kAmx},
      {"amx-int8", static_cast<bool>(__builtin_cpu_supports("amx-int8")), CpuIsa::kAmx},
  };
  return features;
}

struct IsaName {
  CpuIsa isa;
  const char* name;
};
constexpr IsaName kIsaNames[] = {
    {CpuIsa::kBaseline, "baseline"},      {CpuIsa::kAvx2, "avx2"},
    {CpuIsa::kAvx512, "avx512"},          {CpuIsa::kAvx512Vnni, "avx512_vnni"},
    {CpuIsa::kAvx512Bf16, "avx512_bf16"}, {CpuIsa::kAmx, "amx"},
};

bool under_ceiling(const Feature& feature) {
  const std::optional<CpuIsa> ceiling = cpu_isa_ceiling();
  return feature.present && (!ceiling || feature.level <= *ceiling);
}

bool has_all(std::initializer_list<std::string_view> names) {
  for (const std::string_view name : names) {
    const std::optional<bool> has = cpu_has(std::string(name));
    if (!has || !*has) return false;
  }
  return true;
}

// The value each library's variable takes for `isa`.
const char* aten_capability(CpuIsa isa) {
  if (isa >= CpuIsa::kAvx512) return "avx512";
  return isa >= CpuIsa::kAvx2 ? "avx2" : "default";
}
const char* onednn_isa(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kBaseline:
      return "SSE41";
    case CpuIsa::kAvx2:
      return "AVX2";
    case CpuIsa::kAvx512:
      return "AVX512_CORE";
    case CpuIsa::kAvx512Vnni:
      return "AVX512_CORE_VNNI";
    case CpuIsa::kAvx512Bf16:
      return "AVX512_CORE_BF16";
    case CpuIsa::kAmx:
      break;
  }
  return "AVX512_CORE_AMX";
}
const char* mkl_instructions(CpuIsa isa) {
  if (isa >= CpuIsa::kAvx512Vnni) return "AVX512_E1";
  if (isa >= CpuIsa::kAvx512) return "AVX512";
  return isa >= CpuIsa::kAvx2 ? "AVX2" : "SSE4_2";
}

}  // namespace

std::optional<CpuIsa> cpu_isa_ceiling() {
  static const std::optional<CpuIsa> ceiling = []() -> std::optional<CpuIsa> {
    const char* value = std::getenv("ENGINE_MAX_CPU_ISA");
    if (value == nullptr || *value == '\0') return std::nullopt;
    for (const IsaName& entry : kIsaNames) {
      if (std::string_view(value) == entry.name) return entry.isa;
    }
    throw ConfigError(fmt::format(
        "ENGINE_MAX_CPU_ISA is '{}'; it takes baseline, avx2, avx512, avx512_vnni, avx512_bf16 "
        "or amx (or unset it to use everything this CPU has)",
        value));
  }();
  return ceiling;
}

std::optional<bool> cpu_has(const std::string& feature) {
  for (const Feature& known : detected_features()) {
    if (feature == known.name) return under_ceiling(known);
  }
  return std::nullopt;
}

CpuIsa cpu_isa() {
  static const CpuIsa isa = [] {
    if (!has_all({"avx2", "fma"})) return CpuIsa::kBaseline;
    if (!has_all({"avx512f", "avx512bw", "avx512vl", "avx512dq"})) return CpuIsa::kAvx2;
    if (!has_all({"avx512vnni"})) return CpuIsa::kAvx512;
    if (!has_all({"avx512bf16"})) return CpuIsa::kAvx512Vnni;
    if (!has_all({"amx-tile", "amx-bf16", "amx-int8"})) return CpuIsa::kAvx512Bf16;
    return CpuIsa::kAmx;
  }();
  return isa;
}

std::string cpu_isa_name(CpuIsa isa) {
  for (const IsaName& entry : kIsaNames) {
    if (entry.isa == isa) return entry.name;
  }
  return "unknown";
}

std::string cpu_isa_name() { return cpu_isa_name(cpu_isa()); }

std::string cpu_feature_list() {
  std::string list;
  for (const Feature& feature : detected_features()) {
    if (!under_ceiling(feature)) continue;
    if (!list.empty()) list += ' ';
    list += feature.name;
  }
  return list;
}

void apply_cpu_isa_ceiling() {
  const std::optional<CpuIsa> ceiling = cpu_isa_ceiling();
  if (!ceiling) return;
  // The lower of the ceiling and what the CPU has: a library told to use more than the CPU has
  // refuses or ignores it.
  const CpuIsa isa = cpu_isa();
  setenv("ATEN_CPU_CAPABILITY", aten_capability(isa), /*overwrite=*/0);
  setenv("ONEDNN_MAX_CPU_ISA", onednn_isa(isa), /*overwrite=*/0);
  setenv("MKL_ENABLE_INSTRUCTIONS", mkl_instructions(isa), /*overwrite=*/0);
}

}  // namespace engine
