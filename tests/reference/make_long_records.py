#!/usr/bin/env python3
"""Rerank records with one very long passage next to short ones, for the long-context memory
test (tests/e2e/memory_limit_test.cc, LongContextTest).

Usage:
  python tests/reference/make_long_records.py --checkpoint DIR --out FILE.jsonl [--tokens 16000]

The first record's first passage is at least --tokens tokens long by DIR's tokenizer (the
tokenizer the bundle carries), its seven other passages and six more records' eight are a few
sentences each, in several languages.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from models.common import multilingual_corpus as mc  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokens", type=int, default=16000)
    args = parser.parse_args()

    from transformers import AutoTokenizer  # noqa: PLC0415

    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    rng = random.Random(3)
    parts = []
    while len(tokenizer(" ".join(parts), add_special_tokens=False)["input_ids"]) < args.tokens:
        parts.append(mc.passage(rng, "en", 20))
    long_passage = " ".join(parts)
    langs = ["en", "de", "fr", "ru", "zh", "ja", "es"]
    records = [{"query": mc.query(rng, "en"),
                "passages": [long_passage] + [mc.passage(rng, "en", 2) for _ in range(7)]}]
    records += [{"query": mc.query(rng, lang), "passages": [mc.passage(rng, lang, 2)
                                                            for _ in range(8)]}
                for lang in langs[1:]]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
    count = len(tokenizer(long_passage, add_special_tokens=False)["input_ids"])
    print(f"{args.out}: {len(records)} records, the long passage {count} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
