#!/usr/bin/env bash
# Exports the tiny random-weight demo bundle of every family that configs/ uses, once each, into
# demo/. Their outputs carry no meaning; they show each pipeline end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
export_tiny() {  # family, bundle name, extra exporter arguments
  local family=$1 name=$2
  shift 2
  if [ ! -f "demo/$name/engine.json" ]; then
    echo "[demo] exporting demo/$name (tiny $family)" >&2
    .venv/bin/python tools/export.py --family "$family" --tiny --out "demo/$name" "$@" >/dev/null
  fi
}
export_tiny cross_encoder bge-reranker-tiny
export_tiny bge_m3 bge-m3-tiny
export_tiny structbert structbert-tiny
export_tiny llm_reranker llm-reranker-tiny
export_tiny embedder embedder-tiny
