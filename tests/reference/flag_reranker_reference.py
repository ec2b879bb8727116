#!/usr/bin/env python3
"""Reference scores from FlagEmbedding's FlagReranker (1.4.2) on CPU.

Usage:
  python tests/reference/flag_reranker_reference.py --checkpoint DIR --pairs FILE.jsonl
      --out FILE.json [--max-length 512] [--batch-size 4]

Reads {"query", "passage"} per line and writes
  {"raw": [...], "normalized": [...]}
where raw are the logits and normalized = sigmoid(raw), in input order, from
``FlagReranker(DIR, use_fp16=False, devices="cpu").compute_score(pairs, ...)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def read_pairs(path: Path) -> list[list[str]]:
    pairs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            if not isinstance(obj.get("query"), str) or not isinstance(obj.get("passage"), str):
                raise ValueError(f"{path}:{n}: expected string fields 'query' and 'passage'")
            pairs.append([obj["query"], obj["passage"]])
    if not pairs:
        raise ValueError(f"{path}: no pairs")
    return pairs


def flag_scores(checkpoint: Path, pairs: list[list[str]], max_length: int,
                batch_size: int, instructions: dict) -> dict:
    import torch
    from FlagEmbedding import FlagReranker

    torch.set_num_threads(2)
    reranker = FlagReranker(str(checkpoint), use_fp16=False, devices="cpu",
                            batch_size=batch_size, **instructions)
    raw = reranker.compute_score(pairs, normalize=False, max_length=max_length,
                                 batch_size=batch_size)
    normalized = reranker.compute_score(pairs, normalize=True, max_length=max_length,
                                        batch_size=batch_size)
    return {"raw": [float(x) for x in raw], "normalized": [float(x) for x in normalized]}


def main() -> int:
    parser = argparse.ArgumentParser(description="FlagReranker reference scores")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--query-instruction", default=None)
    parser.add_argument("--query-instruction-format", default="{}{}")
    parser.add_argument("--passage-instruction", default=None)
    parser.add_argument("--passage-instruction-format", default="{}{}")
    args = parser.parse_args()
    instructions = {
        "query_instruction_for_rerank": args.query_instruction,
        "query_instruction_format": args.query_instruction_format,
        "passage_instruction_for_rerank": args.passage_instruction,
        "passage_instruction_format": args.passage_instruction_format,
    }
    if not (args.checkpoint / "config.json").is_file():
        parser.error(f"{args.checkpoint}: no config.json")
    if not args.pairs.is_file():
        parser.error(f"{args.pairs}: not a file")

    result = flag_scores(args.checkpoint, read_pairs(args.pairs), args.max_length,
                         args.batch_size, instructions)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    raw = result["raw"]
    print(f"wrote {args.out}: {len(raw)} scores, raw range [{min(raw):.4f}, {max(raw):.4f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
