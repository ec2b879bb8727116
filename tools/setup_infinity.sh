#!/usr/bin/env bash
# The Infinity peer for bench/serve_bench.py, in a virtual environment of its own (.venv-infinity):
# infinity-emb pins numpy<2 and rich<14, which the project's .venv (numpy 2) cannot hold. The
# packages are pinned; torch is not installed a second time: a folder of links to .venv's torch
# and the packages torch alone needs (sympy, networkx, jinja2, the CUDA wheels) goes on this
# environment's path through a .pth file, so Infinity runs on the same torch 2.11 as the
# engine's LibTorch and the other peers, with its own numpy 1.26.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || { echo "run tools/setup.sh first" >&2; exit 1; }
if [ -f .venv-infinity/.ready ]; then
  echo "[setup_infinity] .venv-infinity present" >&2
  exit 0
fi
python3 -m venv .venv-infinity
.venv-infinity/bin/python -m pip install -q --upgrade pip==25.3
.venv-infinity/bin/python -m pip install -q -r requirements-infinity.txt
.venv-infinity/bin/python -m pip install -q --no-deps infinity-emb==0.0.78 sentence-transformers==3.4.1
main_site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
own_site=$(.venv-infinity/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
links=.venv-infinity/torch-from-venv
mkdir -p "$links"
for package in torch torchgen functorch triton nvidia cuda sympy mpmath networkx jinja2 markupsafe; do
  [ -e "$main_site/$package" ] && ln -sfn "$main_site/$package" "$links/$package"
done
for info in "$main_site"/torch-*.dist-info; do ln -sfn "$info" "$links/$(basename "$info")"; done
echo "$(pwd)/$links" > "$own_site/zz_engine_venv_torch.pth"
.venv-infinity/bin/python -c 'import torch, numpy, infinity_emb; print("[setup_infinity] torch", torch.__version__, "numpy", numpy.__version__, "infinity", infinity_emb.__version__)'
touch .venv-infinity/.ready
