#!/usr/bin/env bash
# The GPU check, as one command on the GPU machine (docs/build.md, "GPU check"): run from the
# repository root there, with .gpu/ (made here by tools/gpu_prepare.sh) carried along.
#
#  1. unpacks .gpu/debs/*.deb with dpkg -x into a private prefix ($GPU_DEPS, /tmp/gpu-deps),
#     never into /, and points CMake, pkg-config and the loader at it
#  2. configures and builds build-gpu/ (Ninja, all cores) against the LibTorch of $PYTHON
#     (python3), and verifies that every Debian library came from the private prefix
#  3. starts exporting a bce-reranker-base-shaped bundle (random weights) while the build runs,
#     with the exporter's pinned transformers 4.57.6 carried as wheels (.gpu/whl) where python3's
#     transformers is 5.x, which tools/export.py does not support
#  4. runs the CUDA tests (CudaMemoryTest.*), which must pass there, not skip
#  5. scores the fixture pairs with the engine on CUDA in fp32, fp16 and bf16 against
#     FlagReranker's reference scores, and compares `engine launch --devices 0` with one process
#  6. the throughput run: the bce-reranker-base-shaped bundle on CUDA in fp32, fp16 and bf16
#     (autocast) and as a bf16-traced graph; pairs/s, tokens/s, peak memory
#  7. the rest of ctest, with the fixtures from .gpu/fixtures (make_fixtures is left out: it
#     needs .venv's transformers 4.x and FlagEmbedding), in the time that is left
#
# Everything runs under `timeout` and inside a time budget ($GPU_CHECK_BUDGET_S, 480 s), so it
# ends inside one 10-minute command. What comes back, in $OUT (./gpu-out when OUT is unset):
#   gpu_check.log   all of the output
#   summary.json    every step's status and seconds, test counts, parity and throughput figures
#   summary.md      the same as tables
#   ctest.log       ctest's own output (CUDA tests and the rest)
#   engine.log      the engine runs' output (parity and throughput)
#
# Usage: tools/gpu_check.sh [options]
#   --no-gpu            no GPU here: build and test on the CPU (the CUDA tests skip), skip the
#                       GPU parity and throughput runs; for trying the script out on a CPU machine
#   --no-tests          skip ctest (CUDA tests and the rest)
#   --no-parity         skip the fixture-parity runs
#   --no-bench          skip the throughput run (and the export behind it)
#   --bench             do the throughput run even with --no-gpu (on the CPU)
#   --bench-shape S     bce-reranker-base (default), bge-reranker-large, or tiny (the fixtures'
#                       xlmr_tiny, no export)
#   --bench-pairs N     pairs per throughput run (default 4096)
#   --jobs N            build jobs (default: all cores)
#   --budget S          seconds for the whole check (default 480)
#   --stop-after STEP   stop after unpack, configure or build
# Environment: PYTHON (python3), OUT (./gpu-out), GPU_DEPS (/tmp/gpu-deps), GPU_BUILD_DIR
# (build-gpu), GPU_CARRY_DIR (.gpu), CUDA_HOME, GPU_CHECK_WERROR (OFF: a compiler other than
# Debian's may warn where GCC 12 does not), GPU_CHECK_CTEST_JOBS.
# Exit status: 0 when every step that ran passed, 1 otherwise, 2 for a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DEVICE=cuda
TESTS=1
PARITY=1
BENCH=auto
BENCH_SHAPE=bce-reranker-base
BENCH_PAIRS=4096
JOBS=$(nproc)
BUDGET=${GPU_CHECK_BUDGET_S:-480}
STOP_AFTER=
usage() { awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --no-gpu) DEVICE=cpu; shift ;;
    --no-tests) TESTS=0; shift ;;
    --no-parity) PARITY=0; shift ;;
    --no-bench) BENCH=0; shift ;;
    --bench) BENCH=1; shift ;;
    --bench-shape) BENCH_SHAPE=$2; shift 2 ;;
    --bench-pairs) BENCH_PAIRS=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --budget) BUDGET=$2; shift 2 ;;
    --stop-after) STOP_AFTER=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ "$BENCH" = auto ] && { [ "$DEVICE" = cuda ] && BENCH=1 || BENCH=0; }
case "$STOP_AFTER" in ""|unpack|configure|build) ;;
  *) echo "gpu_check: --stop-after '$STOP_AFTER': unpack, configure or build" >&2; exit 2 ;;
esac
case "$BENCH_SHAPE" in tiny|bce-reranker-base|bge-reranker-large) ;;
  *) echo "gpu_check: --bench-shape '$BENCH_SHAPE': tiny, bce-reranker-base or bge-reranker-large" >&2
     exit 2 ;;
esac

PYTHON=${PYTHON:-python3}
OUT=${OUT:-$ROOT/gpu-out}
DEPS=${GPU_DEPS:-/tmp/gpu-deps}
BUILD=${GPU_BUILD_DIR:-$ROOT/build-gpu}
CARRY=${GPU_CARRY_DIR:-$ROOT/.gpu}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
case "$CARRY" in /*) ;; *) CARRY=$ROOT/$CARRY ;; esac
WORK=$BUILD/gpu_check
MA=x86_64-linux-gnu
CTEST_JOBS=${GPU_CHECK_CTEST_JOBS:-$(( JOBS > 8 ? 8 : JOBS ))}
START=$SECONDS
RESERVE=10   # seconds kept for the summary at the end

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG=$OUT/gpu_check.log
CTEST_LOG=$OUT/ctest.log
ENGINE_LOG=$OUT/engine.log
: > "$LOG"; : > "$CTEST_LOG"; : > "$ENGINE_LOG"

log() { printf '[gpu_check %4ds] %s\n' "$((SECONDS - START))" "$*"; }
left() { echo $(( BUDGET - (SECONDS - START) - RESERVE )); }

# The private prefix: never /, never a system folder, and only ever a folder this script made.
check_prefix_path() {
  case "$DEPS" in
    /*/*) ;;
    *) log "error: GPU_DEPS='$DEPS' must be an absolute path two folders deep or more"; return 1 ;;
  esac
  case "$DEPS" in
    /usr|/usr/*|/lib*|/bin*|/sbin*|/etc*|/opt|/var|/boot*|/proc*|/sys*|/dev*)
      log "error: GPU_DEPS='$DEPS' is a system folder"; return 1 ;;
  esac
  if [ -e "$DEPS" ] && [ ! -f "$DEPS/.gpu-check-prefix" ]; then
    log "error: $DEPS exists and was not made by gpu_check.sh; set GPU_DEPS to another folder"
    return 1
  fi
}

# ---------------------------------------------------------------------------------------------
# Step records: $WORK/steps.tsv (name, status, seconds, detail); the summary is rewritten from
# them after every step, so a run cut short still leaves one.
# ---------------------------------------------------------------------------------------------
record() {  # record NAME STATUS SECONDS DETAIL
  local detail=${4//$'\t'/ }
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${detail//$'\n'/ }" >> "$WORK/steps.tsv"
  log "-- $1: $2 (${3}s)${4:+: $4}"
  write_summary || log "warning: could not write the summary"
}

# tmo LIMIT CMD...: CMD under timeout, LIMIT cut to the time left; 124 when it ran out.
tmo() {
  local limit=$1; shift
  local remaining
  remaining=$(left)
  [ "$limit" -gt "$remaining" ] && limit=$remaining
  if [ "$limit" -lt 5 ]; then
    log "out of time: not running $1"
    return 124
  fi
  timeout --kill-after=10 "$limit" "$@"
}

# ---------------------------------------------------------------------------------------------
# 0. The machine
# ---------------------------------------------------------------------------------------------
step_environment() {
  local t0=$SECONDS
  log "== environment"
  {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "uname: $(uname -a)"
    if [ -f /etc/os-release ]; then echo "os: $(. /etc/os-release && echo "$PRETTY_NAME")"; fi
    echo "cpus: $(nproc)"
    echo "memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    if git rev-parse HEAD >/dev/null 2>&1; then
      echo "git: $(git rev-parse HEAD)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (uncommitted changes)')"
    else
      echo "git: no repository here (the carried MANIFEST names the commit .gpu was made at)"
    fi
    echo "python: $(command -v "$PYTHON") $("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
    echo "cmake: $(cmake --version | head -1)"
    echo "ninja: $(ninja --version)"
    echo "c++: $("${CXX:-c++}" --version 2>/dev/null | head -1 || echo none)"
    echo "nvcc: $(command -v nvcc || echo none) $(nvcc --version 2>/dev/null | tail -1)"
    if [ -f "$CARRY/MANIFEST" ]; then sed 's/^/carried: /' "$CARRY/MANIFEST" | head -4; fi
  } 2>&1 | tee "$WORK/environment.txt"
  if command -v nvidia-smi >/dev/null; then
    timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
      --format=csv 2>&1 | tee "$WORK/nvidia-smi.txt" || true
  else
    echo "nvidia-smi: none" | tee "$WORK/nvidia-smi.txt"
  fi
  local info
  if ! info=$(timeout 120 "$PYTHON" - <<'PY' 2>&1
import json, torch
cuda = torch.cuda.is_available()
props = torch.cuda.get_device_properties(0) if cuda else None
print(json.dumps({
    "torch": torch.__version__, "torch_cuda": torch.version.cuda, "cuda_available": cuda,
    "device_count": torch.cuda.device_count() if cuda else 0,
    "device": props.name if props else None,
    "device_memory_gib": round(props.total_memory / 2**30, 1) if props else None,
    "capability": f"{props.major}.{props.minor}" if props else None,
    "multiprocessors": props.multi_processor_count if props else None}))
PY
  ); then
    log "$info"
    record environment failed $((SECONDS - t0)) "$PYTHON cannot import torch"
    return 1
  fi
  info=$(printf '%s\n' "$info" | tail -1)
  echo "$info" > "$WORK/torch.json"
  log "torch: $info"
  if [ "$DEVICE" = cuda ] && ! grep -q '"cuda_available": true' "$WORK/torch.json"; then
    record environment failed $((SECONDS - t0)) "torch sees no CUDA device (use --no-gpu on a CPU machine)"
    return 1
  fi
  record environment ok $((SECONDS - t0)) "$(grep -o '"device": [^,]*' "$WORK/torch.json")"
}

# ---------------------------------------------------------------------------------------------
# 1. The Debian libraries, in a private prefix
# ---------------------------------------------------------------------------------------------
unpack_deb() {  # dpkg -x, or ar + tar where there is no dpkg
  if command -v dpkg >/dev/null; then
    dpkg -x "$1" "$DEPS"
  else
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && ar x "$1" && tar -xf data.tar.* -C "$DEPS")
    rm -rf "$tmp"
  fi
}

step_unpack() {
  local t0=$SECONDS
  log "== unpacking the carried .deb files into $DEPS"
  shopt -s nullglob
  local debs=("$CARRY"/debs/*.deb)
  shopt -u nullglob
  if [ ${#debs[@]} -eq 0 ]; then
    record unpack failed 0 "no .deb files in $CARRY/debs: run tools/gpu_prepare.sh on the build machine and carry .gpu"
    return 1
  fi
  check_prefix_path || { record unpack failed 0 "bad GPU_DEPS"; return 1; }
  rm -rf "$DEPS"
  mkdir -p "$DEPS"
  touch "$DEPS/.gpu-check-prefix"
  local deb
  for deb in "${debs[@]}"; do
    unpack_deb "$deb" || { record unpack failed $((SECONDS - t0)) "cannot unpack $deb"; return 1; }
  done
  # pkg-config files name /usr: make them name the prefix.
  find "$DEPS" -name '*.pc' -exec sed -i -E \
    "s#^(prefix|exec_prefix|libdir|includedir|sharedlibdir)=/usr#\\1=$DEPS/usr#" {} +
  # pkg-config that reads only the prefix's .pc files, with its own library.
  mkdir -p "$DEPS/bin"
  cat > "$DEPS/bin/pkg-config" <<EOF
#!/bin/sh
# Made by tools/gpu_check.sh: Debian's pkgconf, reading only $DEPS's .pc files.
LD_LIBRARY_PATH="$DEPS/usr/lib/$MA\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
PKG_CONFIG_LIBDIR="$DEPS/usr/lib/$MA/pkgconfig:$DEPS/usr/share/pkgconfig"
export LD_LIBRARY_PATH PKG_CONFIG_LIBDIR
unset PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
exec "$DEPS/usr/bin/pkgconf" "\$@"
EOF
  chmod +x "$DEPS/bin/pkg-config"
  local missing=() file
  for file in include/yaml-cpp/yaml.h include/sentencepiece_processor.h include/utf8proc.h \
      include/openssl/evp.h include/$MA/openssl/configuration.h include/nlohmann/json.hpp \
      include/CLI/CLI.hpp include/spdlog/spdlog.h include/fmt/format.h include/gtest/gtest.h \
      lib/$MA/libgtest.a lib/$MA/cmake/GTest/GTestConfig.cmake lib/$MA/libyaml-cpp.so \
      lib/$MA/libsentencepiece.so lib/$MA/libspdlog.so lib/$MA/libfmt.so lib/$MA/libcrypto.so \
      lib/$MA/libutf8proc.so include/oniguruma.h lib/$MA/libonig.so bin/pkgconf; do
    [ -e "$DEPS/usr/$file" ] || missing+=("$file")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    record unpack failed $((SECONDS - t0)) "missing from the prefix: ${missing[*]}"
    return 1
  fi
  if ! "$DEPS/bin/pkg-config" --cflags sentencepiece libutf8proc oniguruma > "$WORK/pkg-config.txt" 2>&1; then
    record unpack failed $((SECONDS - t0)) "the carried pkg-config does not run here: $(cat "$WORK/pkg-config.txt")"
    return 1
  fi
  record unpack ok $((SECONDS - t0)) "${#debs[@]} packages; pkg-config: $(cat "$WORK/pkg-config.txt")"
}

# ---------------------------------------------------------------------------------------------
# 2. Configure, build, and check where the libraries came from
# ---------------------------------------------------------------------------------------------
find_cuda_root() {
  local nvcc
  for root in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda; do
    [ -n "$root" ] && [ -x "$root/bin/nvcc" ] && { echo "$root"; return; }
  done
  nvcc=$(command -v nvcc 2>/dev/null) || return 1
  nvcc=$(readlink -f "$nvcc")
  dirname "$(dirname "$nvcc")"
}

step_configure() {
  local t0=$SECONDS
  log "== configuring $BUILD against the LibTorch of $PYTHON"
  local torch_prefix cuda_root cmake_major
  torch_prefix=$("$PYTHON" -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
  TORCH_LIB=$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  local args=(
    -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
    "-DCMAKE_PREFIX_PATH=$torch_prefix;$DEPS/usr"
    "-DPKG_CONFIG_EXECUTABLE=$DEPS/bin/pkg-config"
    "-DOPENSSL_ROOT_DIR=$DEPS/usr"
    # OpenSSL's configuration.h is in the multiarch include folder, which only the system's
    # /usr/include/<triplet> is searched for by default.
    "-DCMAKE_CXX_FLAGS=-isystem $DEPS/usr/include/$MA"
    -DENGINE_PYTHON=/bin/false
    "-DENGINE_WARNINGS_AS_ERRORS=${GPU_CHECK_WERROR:-OFF}"
  )
  if cuda_root=$(find_cuda_root); then
    args+=("-DCUDAToolkit_ROOT=$cuda_root")
    log "CUDA toolkit: $cuda_root"
  else
    log "warning: no nvcc found (CUDA_HOME, /usr/local/cuda, PATH); LibTorch's CMake config needs it"
  fi
  cmake_major=$(cmake --version | sed -n 's/^cmake version \([0-9]*\).*/\1/p')
  # CMake 4 refuses config files that ask for a CMake older than 3.5.
  [ "${cmake_major:-3}" -ge 4 ] && args+=(-DCMAKE_POLICY_VERSION_MINIMUM=3.5)
  log "cmake ${args[*]}"
  local rc=0
  tmo 240 cmake "${args[@]}" > "$WORK/configure.log" 2>&1 || rc=$?
  tail -n 25 "$WORK/configure.log"
  if [ $rc -ne 0 ]; then
    grep -n -A8 "CMake Error" "$WORK/configure.log" | head -60 || true
    record configure failed $((SECONDS - t0)) "cmake exit $rc (see the log above)"
    return 1
  fi
  # Every library of the project's own CMake and pkg-config look-ups must come from the prefix.
  local leaks=() name value
  for name in yaml-cpp_DIR nlohmann_json_DIR CLI11_DIR spdlog_DIR fmt_DIR GTest_DIR \
      OPENSSL_INCLUDE_DIR OPENSSL_CRYPTO_LIBRARY SENTENCEPIECE_INCLUDEDIR SENTENCEPIECE_LIBDIR \
      UTF8PROC_INCLUDEDIR UTF8PROC_LIBDIR pkgcfg_lib_SENTENCEPIECE_sentencepiece \
      pkgcfg_lib_UTF8PROC_utf8proc ONIG_INCLUDEDIR ONIG_LIBDIR pkgcfg_lib_ONIG_onig \
      PKG_CONFIG_EXECUTABLE; do
    value=$(sed -n "s/^$name:[A-Z]*=//p" "$BUILD/CMakeCache.txt" | head -1)
    echo "$name=$value" >> "$WORK/cache-paths.txt"
    case "$value" in "$DEPS"/*) ;; *) leaks+=("$name=${value:-unset}") ;; esac
  done
  sed 's/^/  /' "$WORK/cache-paths.txt"
  if [ ${#leaks[@]} -gt 0 ]; then
    record configure failed $((SECONDS - t0)) "found outside $DEPS: ${leaks[*]}"
    return 1
  fi
  record configure ok $((SECONDS - t0)) "$(grep -c . "$WORK/cache-paths.txt") library paths, all in $DEPS"
}

step_build() {
  local t0=$SECONDS
  log "== building with $JOBS jobs"
  local rc=0
  tmo 420 cmake --build "$BUILD" -j "$JOBS" > "$WORK/build.log" 2>&1 || rc=$?
  if [ $rc -ne 0 ]; then
    grep -E -B2 -A12 "error:|FAILED:" "$WORK/build.log" | head -120 || tail -n 60 "$WORK/build.log"
    if [ $rc -eq 124 ]; then
      record build failed $((SECONDS - t0)) "timed out"
    else
      record build failed $((SECONDS - t0)) "exit $rc"
    fi
    return 1
  fi
  tail -n 3 "$WORK/build.log"
  # Headers: none of the Debian libraries' may come from /usr/include.
  local pattern='^ */usr/include/((x86_64-linux-gnu/)?openssl|yaml-cpp|nlohmann|CLI|spdlog|fmt|gtest|gmock|sentencepiece|utf8proc|oniguruma)'
  local leaked
  leaked=$(ninja -C "$BUILD" -t deps 2>/dev/null | grep -E "$pattern" | sort -u | head -5 || true)
  if [ -n "$leaked" ]; then
    record build failed $((SECONDS - t0)) "headers from the system, not $DEPS: $leaked"
    return 1
  fi
  # Libraries: resolved from the prefix with no LD_LIBRARY_PATH (the build's RUNPATH).
  local binary lib bad=()
  if command -v ldd >/dev/null; then
    for binary in "$BUILD/engine/cli/engine" "$BUILD/lib/libengine_sentencepiece.so"; do
      while read -r lib; do
        case "$lib" in *"=> $DEPS/"*) ;; *) bad+=("$(basename "$binary"): $lib") ;; esac
      done < <(env -u LD_LIBRARY_PATH ldd "$binary" |
        grep -E 'lib(yaml-cpp|spdlog|fmt|sentencepiece|utf8proc|onig|crypto|ssl)\.' || true)
    done
  else
    log "warning: no ldd here: where the libraries load from is not checked"
  fi
  if [ ${#bad[@]} -gt 0 ]; then
    record build failed $((SECONDS - t0)) "libraries not from $DEPS: ${bad[*]}"
    return 1
  fi
  record build ok $((SECONDS - t0)) "headers and libraries of the Debian packages all from $DEPS"
}

# ---------------------------------------------------------------------------------------------
# 3. The throughput bundle, exported in the background while the build runs
# ---------------------------------------------------------------------------------------------
EXPORT_PID=
BENCH_DIR=
try_export() {  # try_export [PYTHONPATH]: the fp32 bundle with its random checkpoint, then bf16
  local ckpt=$BENCH_DIR/checkpoint fp32=$BENCH_DIR/bundle-fp32 bf16=$BENCH_DIR/bundle-bf16
  rm -rf "$ckpt" "$fp32" "$bf16"
  (
    if [ -n "${1:-}" ]; then export PYTHONPATH=$1; fi
    export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
    echo "--- tools/export.py --tiny --shape $BENCH_SHAPE${1:+ (PYTHONPATH=$1)}"
    timeout 300 nice -n 5 "$PYTHON" tools/export.py --family cross_encoder --tiny \
      --shape "$BENCH_SHAPE" --out "$fp32" --tiny-checkpoint-dir "$ckpt" --threads 4 || exit 1
    echo "--- tools/export.py --dtype bf16"
    timeout 240 nice -n 5 "$PYTHON" tools/export.py --family cross_encoder --checkpoint "$ckpt" \
      --out "$bf16" --dtype bf16 --threads 4
  )
}

start_export() {
  BENCH_DIR=$WORK/bench
  mkdir -p "$BENCH_DIR"
  rm -f "$BENCH_DIR/export.status"
  [ "$BENCH_SHAPE" = tiny ] && return 0
  log "== exporting the $BENCH_SHAPE-shaped bundle in the background (python: $PYTHON)"
  set -m  # its own process group, so that all of it can be stopped
  (
    t0=$SECONDS
    : > "$BENCH_DIR/export.log"
    # tools/export.py is written against transformers 4.x (requirements.txt pins 4.57.6); with
    # 5.x it fails (XLMRobertaForSequenceClassification takes no 'torchscript' any more). So where
    # python3's transformers is not 4.x, the pinned packages carried as wheels go first, installed
    # into a folder of their own that only the export puts first on PYTHONPATH.
    own=$("$PYTHON" -c 'import transformers; print(transformers.__version__)' 2>/dev/null || echo none)
    echo "--- $PYTHON's transformers: $own" >> "$BENCH_DIR/export.log"
    case "$own" in 4.*) ways=(own wheels) ;; *) ways=(wheels own) ;; esac
    for way in "${ways[@]}"; do
      if [ "$way" = own ]; then
        if try_export >> "$BENCH_DIR/export.log" 2>&1; then
          echo "ok $((SECONDS - t0)) with $PYTHON's own transformers $own" > "$BENCH_DIR/export.status"
          exit 0
        fi
      elif ls "$CARRY"/whl/*.whl >/dev/null 2>&1; then
        echo "--- the carried wheels: $(cd "$CARRY/whl" && echo *.whl)" >> "$BENCH_DIR/export.log"
        rm -rf "$BENCH_DIR/site"
        if timeout 120 "$PYTHON" -m pip install -q --no-index --no-deps --no-compile \
              --no-cache-dir --target "$BENCH_DIR/site" "$CARRY"/whl/*.whl >> "$BENCH_DIR/export.log" 2>&1 &&
           try_export "$BENCH_DIR/site" >> "$BENCH_DIR/export.log" 2>&1; then
          echo "ok $((SECONDS - t0)) with the carried wheels (requirements.lock's versions)" > "$BENCH_DIR/export.status"
          exit 0
        fi
      else
        echo "--- no wheels in $CARRY/whl (tools/gpu_prepare.sh without --no-wheels)" >> "$BENCH_DIR/export.log"
      fi
    done
    echo "failed $((SECONDS - t0))" > "$BENCH_DIR/export.status"
  ) < /dev/null > /dev/null 2>&1 &
  EXPORT_PID=$!
  set +m
}

stop_export() {
  if [ -n "${EXPORT_PID:-}" ]; then
    kill -- "-$EXPORT_PID" 2>/dev/null || kill "$EXPORT_PID" 2>/dev/null || true
    EXPORT_PID=
  fi
}

# ---------------------------------------------------------------------------------------------
# 4 and 7. ctest
# ---------------------------------------------------------------------------------------------
place_fixtures() {
  [ -f "$CARRY/fixtures/xlmr_tiny/engine.json" ] || return 1
  rm -rf "$BUILD/test_fixtures"
  cp -a "$CARRY/fixtures" "$BUILD/test_fixtures"
}

# run_ctest NAME JUNIT LIMIT ctest-args...: make_fixtures never runs (-FA: no fixture setup is
# added), the fixtures are the carried ones.
run_ctest() {
  local name=$1 junit=$2 limit=$3; shift 3
  local t0=$SECONDS rc=0
  log "== ctest: $name"
  echo "===== ctest $name: $*" >> "$CTEST_LOG"
  tmo "$limit" env LD_LIBRARY_PATH="$DEPS/usr/lib/$MA:$TORCH_LIB" \
    ctest --test-dir "$BUILD" -FA '.*' -E '^make_fixtures$' --output-on-failure \
      --output-junit "$junit" "$@" >> "$CTEST_LOG" 2>&1 || rc=$?
  grep -E "tests passed|tests failed|Total Test time" "$CTEST_LOG" | tail -2 || true
  local counts
  counts=$(junit_counts "$junit")
  log "$name: $counts"
  if [ $rc -eq 124 ]; then
    record "$name" failed $((SECONDS - t0)) "timed out; $counts"
  elif [ $rc -ne 0 ]; then
    record "$name" failed $((SECONDS - t0)) "$counts"
  else
    record "$name" ok $((SECONDS - t0)) "$counts"
  fi
  return $rc
}

junit_counts() {
  [ -f "$1" ] || { echo "no results"; return; }
  "$PYTHON" - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
count = {"passed": 0, "failed": 0, "skipped": 0}
failed = []
for case in cases:
    status = case.get("status", "run")
    if case.find("failure") is not None or case.find("error") is not None or status == "fail":
        count["failed"] += 1
        failed.append(case.get("name"))
    elif case.find("skipped") is not None or status in ("disabled", "notrun"):
        count["skipped"] += 1
    else:
        count["passed"] += 1
text = ", ".join(f"{v} {k}" for k, v in count.items())
if failed:
    text += "; failed: " + " ".join(failed[:12]) + (" ..." if len(failed) > 12 else "")
print(text)
PY
}

step_cuda_tests() {
  run_ctest cuda_tests "$WORK/junit-cuda.xml" 120 -R '^CudaMemoryTest\.' || return 1
  if [ "$DEVICE" = cuda ] && grep -q "[1-9][0-9]* skipped" <<< "$(junit_counts "$WORK/junit-cuda.xml")"; then
    record cuda_tests_ran failed 0 "the CUDA tests skipped: the engine saw no CUDA device"
    return 1
  fi
}

step_other_tests() {
  if [ "$(left)" -lt 30 ]; then
    record other_tests skipped 0 "out of time (budget ${BUDGET}s)"
    return 0
  fi
  # serve_test needs the httpx, cohere and openai clients of .venv, which the GPU machine lacks.
  run_ctest other_tests "$WORK/junit-other.xml" 300 \
    -E '^(make_fixtures|serve_test|CudaMemoryTest\..*)$' \
    -j "$CTEST_JOBS" --timeout 240
}

# ---------------------------------------------------------------------------------------------
# 5 and 6. The engine on the device
# ---------------------------------------------------------------------------------------------
ENGINE=
engine_run() {  # engine_run NAME LIMIT overrides... ; output in $RUNS/NAME.jsonl, summary beside
  local name=$1 limit=$2; shift 2
  local sets=() item
  for item in "$@"; do sets+=(--set "$item"); done
  rm -rf "$RUNS/$name.jsonl"*
  echo "===== $name: engine ${sets[*]}" >> "$ENGINE_LOG"
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  tmo "$limit" env LD_LIBRARY_PATH="$DEPS/usr/lib/$MA:$TORCH_LIB" "$ENGINE" \
    --config "$ROOT/configs/rerank.yaml" --summary "$RUNS/$name.summary.json" \
    --set output.path="$RUNS/$name.jsonl" --set logging.progress_interval_s=0 "${sets[@]}" \
    >> "$ENGINE_LOG" 2>&1 || rc=$?
  t1=$(date +%s.%N)
  echo "$t0 $t1 $rc" > "$RUNS/$name.wall"
  return $rc
}

step_parity() {
  local t0=$SECONDS
  log "== fixture parity on $DEVICE"
  RUNS=$WORK/parity
  rm -rf "$RUNS"; mkdir -p "$RUNS"
  local fixtures=$BUILD/test_fixtures base=() runs=() name rc=0
  base=(model.path="$fixtures/xlmr_tiny" input.path="$fixtures/pairs.jsonl" task.kind=score
        task.max_length=512 task.normalize=false)
  runs=("cpu-fp32 cpu fp32")
  [ "$DEVICE" = cuda ] && runs+=("cuda-fp32 cuda fp32" "cuda-fp16 cuda fp16" "cuda-bf16 cuda bf16")
  local spec device dtype
  for spec in "${runs[@]}"; do
    read -r name device dtype <<< "$spec"
    engine_run "$name" 90 "${base[@]}" model.device="$device" model.dtype="$dtype" || rc=1
  done
  if [ "$DEVICE" = cuda ]; then
    # One GPU worker of engine launch against the single process: the same bytes expected.
    rm -rf "$RUNS/launch.jsonl"*
    echo "===== launch-cuda0: engine launch --devices 0" >> "$ENGINE_LOG"
    tmo 120 env LD_LIBRARY_PATH="$DEPS/usr/lib/$MA:$TORCH_LIB" "$ENGINE" launch --devices 0 \
      --config "$ROOT/configs/rerank.yaml" --summary "$RUNS/launch.summary.json" \
      --set output.path="$RUNS/launch.jsonl" --set logging.progress_interval_s=0 \
      --set model.path="$fixtures/xlmr_tiny" --set input.path="$fixtures/pairs.jsonl" \
      --set task.kind=score --set task.max_length=512 --set model.dtype=fp32 \
      >> "$ENGINE_LOG" 2>&1 || rc=1
  fi
  local verdict
  verdict=$("$PYTHON" - "$RUNS" "$fixtures/flag_reranker_512.json" <<'PY'
import json, math, sys
from pathlib import Path
runs, reference = Path(sys.argv[1]), json.load(open(sys.argv[2]))["raw"]
# fp32 on any device must match FlagReranker's fp32 as on the CPU (the tests allow 1e-5; CUDA's
# kernels sum in another order); half precision is reported against a looser bound.
bounds = {"fp32": 1e-4, "fp16": 2e-2, "bf16": 6e-2}
rows, worst_status = [], "ok"
for path in sorted(runs.glob("*.jsonl")):
    name = path.stem
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    scores = [line.get("score") for line in lines]
    row = {"run": name, "pairs": len(scores)}
    if len(scores) != len(reference) or any(s is None or not math.isfinite(s) for s in scores):
        row.update(status="failed", detail=f"{len(scores)} scores for {len(reference)} pairs, or errors")
    else:
        delta = max(abs(a - b) for a, b in zip(scores, reference))
        dtype = "fp32" if name == "launch" else name.split("-")[-1]
        row.update(max_abs_delta=delta, bound=bounds[dtype],
                   status="ok" if delta <= bounds[dtype] else "failed")
    rows.append(row)
single, launch = runs / "cuda-fp32.jsonl", runs / "launch.jsonl"
if single.exists() and launch.exists():
    same = single.read_bytes() == launch.read_bytes()
    rows.append({"run": "launch vs single process (bytes)", "status": "ok" if same else "warn",
                 "detail": "identical" if same else "different bytes"})
for row in rows:
    if row["status"] == "failed":
        worst_status = "failed"
json.dump(rows, open(runs / "parity.json", "w"), indent=1)
print(worst_status, "; ".join(
    f"{r['run']}: {r['max_abs_delta']:.2e}" if "max_abs_delta" in r else f"{r['run']}: {r.get('detail', r['status'])}"
    for r in rows))
PY
  ) || verdict="failed could not compare the outputs"
  log "parity: $verdict"
  local status=${verdict%% *}
  [ $rc -ne 0 ] && status=failed && verdict="$verdict (an engine run failed; see engine.log)"
  record parity "$status" $((SECONDS - t0)) "${verdict#* }"
  [ "$status" != failed ]
}

step_bench() {
  local t0=$SECONDS
  log "== throughput: $BENCH_SHAPE-shaped bundle on $DEVICE, $BENCH_PAIRS pairs"
  RUNS=$BENCH_DIR
  local fp32 bf16
  if [ "$BENCH_SHAPE" = tiny ]; then
    fp32=$BUILD/test_fixtures/xlmr_tiny bf16=$BUILD/test_fixtures/xlmr_tiny_bf16
  else
    fp32=$BENCH_DIR/bundle-fp32 bf16=$BENCH_DIR/bundle-bf16
    if [ -n "$EXPORT_PID" ]; then
      log "waiting for the export (pid $EXPORT_PID)"
      local waited=0
      while kill -0 "$EXPORT_PID" 2>/dev/null && [ "$(left)" -gt 60 ]; do sleep 2; waited=$((waited + 2)); done
      if kill -0 "$EXPORT_PID" 2>/dev/null; then
        stop_export
        record bench failed $((SECONDS - t0)) "the export did not finish in time"
        return 1
      fi
      wait "$EXPORT_PID" || true
      EXPORT_PID=
    fi
    local status
    status=$(cat "$BENCH_DIR/export.status" 2>/dev/null || echo "failed (no status)")
    log "export: $status"
    tail -n 15 "$BENCH_DIR/export.log" 2>/dev/null || true
    cp "$BENCH_DIR/export.log" "$WORK/export.log" 2>/dev/null || true
    if [ "${status%% *}" != ok ] && [ ! -f "$fp32/engine.json" ]; then
      record export failed 0 "tools/export.py failed with the carried wheels and with $PYTHON's own packages (export.log above)"
      sed 's/^/  export| /' "$BENCH_DIR/export.log" | tail -n 40
      return 1
    fi
    record export ok "$(echo "$status" | awk '{print $2}')" "${status#ok * }"
  fi
  # Pairs of 60 to 120 words, as the peer benchmark's (bench/bench_common.py).
  "$PYTHON" -c "import sys; sys.path.insert(0, 'bench'); from pathlib import Path; \
from bench_common import write_pairs; write_pairs(Path(sys.argv[1]), int(sys.argv[2]), (60, 120), 7)" \
    "$BENCH_DIR/pairs.jsonl" "$BENCH_PAIRS"
  local settings=(input.path="$BENCH_DIR/pairs.jsonl" task.kind=score task.max_length=512
                  model.device="$DEVICE" memory.warmup=true batching.max_batch_size=128
                  batching.max_tokens=65536)
  [ "$DEVICE" = cpu ] && settings=(input.path="$BENCH_DIR/pairs.jsonl" task.kind=score
                                    task.max_length=512 model.device=cpu memory.warmup=true)
  local rows=("fp32 $fp32 fp32" "fp16-autocast $fp32 fp16" "bf16-autocast $fp32 bf16"
              "bf16-graph $bf16 bundle")
  [ "$DEVICE" = cpu ] && rows=("fp32 $fp32 fp32" "bf16-graph $bf16 bundle")
  local spec name bundle dtype rc=0 ran=0
  for spec in "${rows[@]}"; do
    read -r name bundle dtype <<< "$spec"
    [ -f "$bundle/engine.json" ] || { log "no bundle $bundle: $name left out"; continue; }
    if [ "$(left)" -lt 40 ]; then log "out of time: $name left out"; continue; fi
    log "bench $name"
    engine_run "bench-$name" 150 "${settings[@]}" model.path="$bundle" model.dtype="$dtype" ||
      { rc=1; log "bench $name failed (see engine.log)"; }
    ran=$((ran + 1))
  done
  local table
  table=$("$PYTHON" - "$BENCH_DIR" "$fp32" <<'PY'
import json, sys
from pathlib import Path
runs, bundle = Path(sys.argv[1]), Path(sys.argv[2])
arch = json.loads((bundle / "engine.json").read_text())["architecture"]
H, layers, I = arch["hidden_size"], arch["num_layers"], arch["intermediate_size"]
rows = []
for summary_path in sorted(runs.glob("bench-*.summary.json"), key=lambda p: p.stat().st_mtime):
    name = summary_path.name[len("bench-"):-len(".summary.json")]
    s = json.loads(summary_path.read_text())
    t0, t1, rc = (runs / f"bench-{name}.wall").read_text().split()
    # The job's seconds less its warm-up pass (memory.warmup), as bench/peer_bench.py counts.
    warmup = s.get("warmup_seconds", 0.0)
    pairs, seconds = s.get("pairs", 0), max(s.get("seconds", 0) - warmup, 1e-9)
    tokens = s.get("real_tokens", 0)
    L = tokens / max(pairs, 1)
    # Multiply-adds x 2 of a sequence of the mean length (docs/speed.md's formula).
    flop = layers * (2 * L * (4 * H * H + 2 * H * I) + 4 * L * L * H) * pairs
    rows.append({"run": name, "pairs": pairs, "error_records": s.get("error_records"),
                 "seconds": round(seconds, 3), "warmup_s": round(warmup, 3), "wall_s": round(float(t1) - float(t0), 2),
                 "pairs_per_s": round(pairs / seconds, 1),
                 "tokens_per_s": round(tokens / seconds),
                 "mean_tokens": round(L, 1), "batches": s.get("batches"),
                 "padding_efficiency": round(tokens / max(s.get("padded_tokens", 1), 1), 3),
                 "approx_tflop_s": round(flop / seconds / 1e12, 1),
                 "peak_allocated_mib": round(s.get("memory", {}).get("peak_allocated", 0) / 2**20),
                 "peak_reserved_mib": round(s.get("memory", {}).get("peak_reserved", 0) / 2**20),
                 "peak_resident_mib": round(s.get("peak_resident", 0) / 2**20),
                 "exit": int(rc)})
json.dump({"architecture": arch, "rows": rows}, open(runs / "bench.json", "w"), indent=1)
for r in rows:
    print(f"{r['run']}: {r['pairs_per_s']} pairs/s ({r['tokens_per_s']} tokens/s, ~{r['approx_tflop_s']} TFLOP/s,"
          f" {r['seconds']} s, peak {r['peak_allocated_mib']} MiB)")
PY
  ) || table="(no figures)"
  printf '%s\n' "$table"
  local detail
  detail=$(printf '%s' "$table" | sed -n 's/^\([^:]*\): \([0-9.]*\) pairs\/s.*/\1 \2/p' | paste -sd, -)
  if [ $ran -eq 0 ]; then
    record bench failed $((SECONDS - t0)) "nothing ran"; return 1
  elif [ $rc -ne 0 ]; then
    record bench failed $((SECONDS - t0)) "a run failed (engine.log); pairs/s: ${detail:-none}"; return 1
  fi
  record bench ok $((SECONDS - t0)) "pairs/s: $detail"
}

# ---------------------------------------------------------------------------------------------
# The summary: summary.json and summary.md from the step records and the result files
# ---------------------------------------------------------------------------------------------
write_summary() {
  "$PYTHON" - "$WORK" "$OUT" "$DEVICE" "$BENCH_SHAPE" "$BUDGET" "$((SECONDS - START))" <<'PY'
import json, sys, time
from pathlib import Path
work, out, device, shape, budget, elapsed = sys.argv[1:7]
work, out = Path(work), Path(out)
steps = []
if (work / "steps.tsv").exists():
    for line in (work / "steps.tsv").read_text().splitlines():
        name, status, seconds, detail = (line.split("\t") + ["", "", "", ""])[:4]
        steps.append({"name": name, "status": status, "seconds": int(seconds or 0), "detail": detail})
def load(path):
    try:
        return json.loads(Path(path).read_text())
    except Exception:
        return None
env = {}
if (work / "environment.txt").exists():
    for line in (work / "environment.txt").read_text().splitlines():
        key, _, value = line.partition(": ")
        if key and key != "carried":
            env[key] = value
summary = {
    "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "device": device, "bench_shape": shape, "budget_s": int(budget), "elapsed_s": int(elapsed),
    "ok": bool(steps) and all(s["status"] in ("ok", "skipped", "warn") for s in steps),
    "environment": env, "torch": load(work / "torch.json"),
    "nvidia_smi": (work / "nvidia-smi.txt").read_text().strip() if (work / "nvidia-smi.txt").exists() else None,
    "steps": steps, "parity": load(work / "parity" / "parity.json"),
    "bench": load(work / "bench" / "bench.json"),
}
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
md = [f"# GPU check: {'passed' if summary['ok'] else 'FAILED'}", "",
      f"{summary['written']}, device {device}, {elapsed} s of a {budget} s budget.", ""]
t = summary["torch"] or {}
if t:
    seen = (f"{t.get('device')} ({t.get('device_memory_gib')} GiB, sm {t.get('capability')})"
            if t.get("device") else "no CUDA device")
    md += [f"torch {t.get('torch')} (CUDA {t.get('torch_cuda')}), device: {seen}", ""]
for key in ("git", "os", "c++", "cmake", "nvcc"):
    if key in env:
        md.append(f"- {key}: {env[key]}")
md += ["", "| step | status | seconds | detail |", "| --- | --- | --- | --- |"]
md += [f"| {s['name']} | {s['status']} | {s['seconds']} | {s['detail'].replace('|', '/')} |" for s in steps]
if summary["parity"]:
    md += ["", "## Fixture parity (xlmr_tiny, 40 pairs, against FlagReranker fp32)", "",
           "| run | max abs delta | bound | status |", "| --- | --- | --- | --- |"]
    for r in summary["parity"]:
        delta = f"{r['max_abs_delta']:.2e}" if "max_abs_delta" in r else r.get("detail", "")
        md.append(f"| {r['run']} | {delta} | {r.get('bound', '')} | {r['status']} |")
if summary["bench"]:
    a = summary["bench"]["architecture"]
    md += ["", f"## Throughput ({shape} shape: hidden {a['hidden_size']}, layers {a['num_layers']}, "
           f"random weights)", "",
           "Seconds are the job's less its warm-up pass; wall s is the whole command (loading included).", "",
           "| run | pairs | pairs/s | tokens/s | ~TFLOP/s | mean tokens | padding eff. | seconds | warm-up s | wall s | peak alloc MiB |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in summary["bench"]["rows"]:
        md.append(f"| {r['run']} | {r['pairs']} | {r['pairs_per_s']} | {r['tokens_per_s']} | "
                  f"{r['approx_tflop_s']} | {r['mean_tokens']} | {r['padding_efficiency']} | "
                  f"{r['seconds']} | {r.get('warmup_s', '')} | {r['wall_s']} | {r['peak_allocated_mib']} |")
(out / "summary.md").write_text("\n".join(md) + "\n")
PY
}

# ---------------------------------------------------------------------------------------------
main() {
  trap stop_export EXIT
  mkdir -p "$WORK"
  : > "$WORK/steps.tsv"
  rm -f "$WORK/cache-paths.txt" "$WORK"/junit-*.xml
  rm -rf "$WORK/parity" "$WORK/bench"
  log "GPU check: device $DEVICE, build $BUILD, prefix $DEPS, out $OUT, budget ${BUDGET}s"
  [ "$(uname -m)" = x86_64 ] || { log "error: the carried .deb files are amd64; this is $(uname -m)"; exit 1; }
  local cuda_ok=1
  step_environment || { [ "$DEVICE" = cuda ] && cuda_ok=0; }
  if ! "$PYTHON" -c 'import torch' 2>/dev/null; then log "error: no torch for $PYTHON"; return 1; fi
  TORCH_LIB=$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  step_unpack || return 1
  [ "$STOP_AFTER" = unpack ] && return 0
  [ "$BENCH" = 1 ] && [ $cuda_ok = 1 ] && start_export
  step_configure || return 1
  [ "$STOP_AFTER" = configure ] && return 0
  step_build || return 1
  [ "$STOP_AFTER" = build ] && return 0
  ENGINE=$BUILD/engine/cli/engine
  if ! place_fixtures; then
    record fixtures failed 0 "no fixtures in $CARRY/fixtures (tools/gpu_prepare.sh copies them)"
    return 1
  fi
  if [ $TESTS = 1 ]; then step_cuda_tests || true; else record tests skipped 0 "--no-tests"; fi
  if [ $PARITY = 0 ]; then
    record parity skipped 0 "--no-parity"
  elif [ $cuda_ok = 1 ]; then
    step_parity || true
  else
    record parity skipped 0 "no CUDA device"
  fi
  if [ "$BENCH" = 0 ]; then
    record bench skipped 0 "$([ "$DEVICE" = cpu ] && echo "--no-gpu" || echo "--no-bench")"
  elif [ $cuda_ok = 1 ]; then
    [ -n "$BENCH_DIR" ] || { BENCH_DIR=$WORK/bench; mkdir -p "$BENCH_DIR"; }
    step_bench || true
  else
    record bench skipped 0 "no CUDA device"
  fi
  if [ $TESTS = 1 ]; then step_other_tests || true; fi
  if [ "$DEVICE" = cuda ] && command -v nvidia-smi >/dev/null; then
    timeout 20 nvidia-smi --query-gpu=name,memory.used,memory.total,temperature.gpu,power.draw \
      --format=csv || true
  fi
}

rc=0
main 2>&1 | tee -a "$LOG" || rc=$?
# main ran in a pipeline's subshell: its step records are in steps.tsv.
[ -f "$WORK/steps.tsv" ] && grep -q $'\tfailed\t' "$WORK/steps.tsv" && rc=1
write_summary 2>&1 | tee -a "$LOG" || true
if [ -f "$OUT/summary.md" ]; then
  echo
  cat "$OUT/summary.md"
fi | tee -a "$LOG"
printf '[gpu_check] %s; results in %s (gpu_check.log, summary.json, summary.md, ctest.log, engine.log)\n' \
  "$([ $rc -eq 0 ] && echo passed || echo FAILED)" "$OUT" | tee -a "$LOG"
exit $rc
