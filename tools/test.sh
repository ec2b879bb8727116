#!/usr/bin/env bash
# Set-up, build, and the whole test suite (GoogleTest under ctest). Fixtures (tiny bundles and
# the reference outputs of transformers and FlagEmbedding) are made by the tests' own setup step.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
ctest --test-dir build --output-on-failure -j "${ENGINE_TEST_JOBS:-2}" "$@"
