#!/usr/bin/env python3
"""What sentence-transformers' CrossEncoder computes on a CrossEncoder directory: the reference
of PublishedCrossEncoderParityTest (tests/e2e/reranker_parity_test.cc).

Usage:
  python tests/reference/cross_encoder_reference.py --checkpoint DIR --pairs FILE.jsonl \
      --out FILE.json [--max-length N]

CrossEncoder(DIR, max_length=N).predict on every {"query", "passage"} pair of FILE.jsonl, with the
directory's own activation (the scores) and with none (the logits); special tokens written in a
text read as text, as the engine reads them (docs/tokenizers.md).

Output (UTF-8 JSON): {"checkpoint", "max_length", "pairs": [[query, passage]], "scores",
"logits"}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()

    import torch  # noqa: PLC0415
    from sentence_transformers import CrossEncoder  # noqa: PLC0415

    torch.set_num_threads(int(os.environ.get("ENGINE_TEST_THREADS", "2")))
    with open(args.pairs, encoding="utf-8") as file:
        pairs = [[r["query"], r["passage"]] for r in map(json.loads, file) if r]
    model = CrossEncoder(str(args.checkpoint), device="cpu", max_length=args.max_length)
    model.tokenizer.split_special_tokens = True
    scores = model.predict(pairs, batch_size=8).tolist()
    logits = model.predict(pairs, batch_size=8, activation_fn=torch.nn.Identity()).tolist()
    result = {"checkpoint": str(args.checkpoint), "max_length": args.max_length, "pairs": pairs,
              "scores": scores, "logits": logits}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as file:
        json.dump(result, file, ensure_ascii=False)
    print(f"{args.out}: {len(pairs)} pairs, activation {type(model.activation_fn).__name__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
