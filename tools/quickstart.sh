#!/usr/bin/env bash
# Everything a newcomer needs, then a job on the bundled demo: set-up, tiny random-weight bundles
# (real architectures, tokenizers trained on the spot), and
#   engine --config configs/rerank.yaml      (or the config given as the first argument)
# The demo's scores carry no meaning: the weights are random. See README for real checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-configs/rerank.yaml}
[ $# -gt 0 ] && shift
tools/setup.sh
tools/demo_bundles.sh
build/engine/cli/engine --config "$CONFIG" "$@"
OUTPUT=$(build/engine/cli/engine check --config "$CONFIG" "$@" 2>/dev/null | sed -n 's/^output: *//p')
echo "[quickstart] results ($OUTPUT):" >&2
cut -c1-300 "$OUTPUT"
