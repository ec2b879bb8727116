#!/usr/bin/env python3
"""Reference scores from BCEmbedding's RerankerModel.rerank (chunked long passages).

Usage:
  python tests/reference/bce_reranker_reference.py --checkpoint DIR --records OUT.jsonl \
      --out SCORES.json [--max-length 256] [--seed 0]

Writes deterministic rerank records (multilingual queries, passages from a few tokens to several
windows long) to --records, runs BCEmbedding 0.1.5 on them on the CPU, and writes
{"<record id>": [score of passage 0, score of passage 1, ...]} to --out. BCEmbedding pins an old
transformers, so it is installed without its dependencies (tools/setup.sh); its rerank() path
needs only transformers' tokenizer and model classes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from models.common.multilingual_corpus import passage, query  # noqa: E402

_LANGS = ["en", "de", "fr", "ru", "zh", "ja", "ko", "ar", "hi", None]


def make_records(seed: int) -> list[dict]:
    rng = random.Random(seed)
    records = []
    for index in range(12):
        lang = _LANGS[index % len(_LANGS)]
        passages = [passage(rng, lang, sentences=rng.choice([1, 3, 12, 40, 90]))
                    for _ in range(rng.randint(2, 4))]
        records.append({"id": f"bce{index}", "query": query(rng, lang), "passages": passages})
    return records


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--records", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    from BCEmbedding import RerankerModel

    torch.set_num_threads(2)
    records = make_records(args.seed)
    model = RerankerModel(str(args.checkpoint), device="cpu", max_length=args.max_length)
    scores = {}
    for record in records:
        result = model.rerank(record["query"], record["passages"], batch_size=8)
        by_index = [0.0] * len(record["passages"])
        for index, score in zip(result["rerank_ids"], result["rerank_scores"]):
            by_index[index] = float(score)
        scores[record["id"]] = by_index
    args.records.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                            encoding="utf-8")
    args.out.write_text(json.dumps(scores, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {len(records)} records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
