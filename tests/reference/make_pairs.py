#!/usr/bin/env python3
"""Write ~40 deterministic (query, passage) pairs as JSONL for reranker tests.

Usage:
  python tests/reference/make_pairs.py --out FILE.jsonl [--seed 0]

Each line: {"query": ..., "passage": ...}.  The set mixes languages and
scripts, has cross-lingual pairs, passages long enough to be truncated at 512
tokens, an empty passage, a whitespace-only passage and an empty query.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from models.common.multilingual_corpus import passage, query, sample_texts  # noqa: E402

_LANGS = ["en", "de", "fr", "es", "ru", "el", "ar", "he", "hi", "zh", "ja", "ko", "th"]


def make_pairs(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    pairs = []
    # Same-language pairs, one per language, short passages.
    for lang in _LANGS:
        pairs.append((query(rng, lang), passage(rng, lang, sentences=rng.randint(1, 4))))
    # Cross-lingual pairs (query and passage in different languages).
    for _ in range(8):
        a, b = rng.sample(_LANGS, 2)
        pairs.append((query(rng, a), passage(rng, b, sentences=rng.randint(2, 6))))
    # Mixed-language passages, where the query's words do occur.
    for _ in range(6):
        text = passage(rng, None, sentences=rng.randint(3, 8))
        words = text.split()
        pairs.append((" ".join(rng.sample(words, min(3, len(words)))), text))
    # Long passages: truncated at max_length=512 (the query is kept whole).
    for lang in ["en", "zh", "ru", None, "ja"]:
        pairs.append((query(rng, lang), passage(rng, lang, sentences=rng.randint(60, 90))))
    # A long query too, so query truncation (max_length * 3 // 4) is exercised.
    pairs.append((passage(rng, "de", sentences=40), passage(rng, "fr", sentences=40)))
    # Edge cases.
    texts = sample_texts()
    pairs += [
        (query(rng, "en"), ""),                     # empty passage
        (query(rng, "fr"), "   "),                  # whitespace-only passage
        ("", passage(rng, "es", sentences=2)),      # empty query
        (texts[0], texts[0]),                       # identical texts
        ("ﬁnance ①", "full-width ＡＢＣ ａｂｃ １２３ ！？ cafe\u0301"),
        ("rare 龘 🦩", "emoji sequences 👩‍💻 🇩🇪 👍🏽 and 𠀀"),
        ("tabs\tand\nnewlines", "  leading and trailing  \t\n"),
    ]
    return [{"query": q, "passage": p} for q, p in pairs]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pairs = make_pairs(args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for pair in pairs:
            f.write(json.dumps(pair, ensure_ascii=False) + "\n")
    print(f"wrote {len(pairs)} pairs to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
