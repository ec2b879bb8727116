#!/usr/bin/env bash
# Set-up, build, and the whole test suite (GoogleTest under ctest), twice: as this CPU is, with two
# threads, and as an AVX2-only CPU would run it, with one thread. Fixtures (tiny bundles and the
# reference outputs of transformers and FlagEmbedding) are made by the tests' own setup step, in a
# folder of each pass's own. Arguments go to ctest and run the first pass only (e.g. -R Jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
JOBS=${ENGINE_TEST_JOBS:-2}

echo "[test] pass 1: this CPU as it is, 2 threads" >&2
ENGINE_TEST_THREADS=2 ctest --test-dir build --output-on-failure -j "$JOBS" "$@"
[ $# -eq 0 ] || exit 0

# The second pass runs what users on AMD Zen 1-3 and older Xeons run, whatever CPU the suite is on:
# ENGINE_MAX_CPU_ISA hides the engine's checks and kernels above AVX2, and LibTorch's kernels,
# oneDNN and MKL are told the same (engine/common/cpu_features.h); tests that need more skip,
# saying why. One thread: outputs must not rest on the thread count the suite happens to use.
pass_two=(ENGINE_TEST_THREADS=1 ENGINE_TEST_FIXTURES="$(pwd)/build/test_fixtures_avx2")
if grep -qw avx2 /proc/cpuinfo; then
  pass_two+=(ENGINE_MAX_CPU_ISA=avx2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2
    MKL_ENABLE_INSTRUCTIONS=AVX2)
fi
echo "[test] pass 2: as an AVX2-only CPU, 1 thread (${pass_two[*]})" >&2
env "${pass_two[@]}" ctest --test-dir build --output-on-failure -j "$JOBS"
