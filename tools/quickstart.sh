#!/usr/bin/env bash
# Everything a newcomer needs, then the main job on the bundled demo: set-up, a tiny random-weight
# reranker bundle (real architecture, tokenizer trained on the spot), and
#   engine --config configs/rerank.yaml
# The demo's scores carry no meaning: the weights are random. See README for real checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
if [ ! -f demo/bge-reranker-tiny/engine.json ]; then
  echo "[quickstart] exporting the tiny demo bundle to demo/bge-reranker-tiny" >&2
  .venv/bin/python tools/export.py --family cross_encoder --tiny --out demo/bge-reranker-tiny
fi
build/engine/cli/engine --config configs/rerank.yaml "$@"
echo "[quickstart] ranked results (out/rerank.jsonl):" >&2
cat out/rerank.jsonl
