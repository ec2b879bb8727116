#!/usr/bin/env bash
# Idempotent set-up: Debian packages, the Python virtual environment (.venv) from PyPI with pinned
# versions, and the CMake build in build/. Safe to run again; each step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

DEBIAN_PACKAGES=(
  build-essential cmake ninja-build pkg-config git python3-venv
  libyaml-cpp-dev libsentencepiece-dev libgtest-dev libgmock-dev nlohmann-json3-dev
  libcli11-dev libspdlog-dev libfmt-dev libutf8proc-dev libonig-dev libssl-dev libboost-dev curl
  slurmctld slurmd slurm-client munge
)

log() { printf '[setup] %s\n' "$*" >&2; }

install_debian_packages() {
  local missing=()
  for package in "${DEBIAN_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$package")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "Debian packages present"
    return
  fi
  log "installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# The CUDA toolkit is not a Debian package here: LibTorch's CMake config needs it at build time.
check_cuda_toolkit() {
  if [ ! -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
    log "error: no CUDA toolkit at ${CUDA_HOME:-/usr/local/cuda} (set CUDA_HOME)"
    exit 1
  fi
}

install_python_environment() {
  local stamp=.venv/.requirements.sha256
  local want
  want=$(cat requirements.txt requirements.lock requirements-nodeps.txt requirements-bench.txt |
    sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "Python environment up to date"
    return
  fi
  log "creating .venv and installing requirements (torch is large: a few minutes)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip==26.3
  .venv/bin/python -m pip install -q -r requirements.txt -c requirements.lock
  .venv/bin/python -m pip install -q --no-deps -r requirements-nodeps.txt
  # The peers of bench/peer_bench.py (ONNX Runtime, OpenVINO, CTranslate2) and matplotlib.
  .venv/bin/python -m pip install -q -r requirements-bench.txt -c requirements.lock
  echo "$want" > "$stamp"
}

build() {
  local prefix
  prefix=$(.venv/bin/python -c 'import torch.utils; print(torch.utils.cmake_prefix_path)')
  if [ ! -f build/CMakeCache.txt ]; then
    log "configuring the build (LibTorch from $prefix)"
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$prefix" -DENGINE_PYTHON="$ROOT/.venv/bin/python" >/dev/null
  fi
  log "building (2 jobs)"
  cmake --build build -j "${ENGINE_BUILD_JOBS:-2}"
}

install_debian_packages
check_cuda_toolkit
install_python_environment
build
log "ready: build/engine/cli/engine"
