#!/usr/bin/env python3
"""How far the bf16 and int8 plans move the published-directory bundles from fp32: for embedders,
the cosine of each text's vector to its fp32 vector and how often the nearest passage of a query
stays the same; for cross-encoders, the largest score change and how often the best passage of a
record stays the same. Writes its table, with the command and the CPU, to docs/benchmarks.md.

Usage:
  python bench/precision_agreement.py [--fixtures build/test_fixtures] [--threads 2]

The bundles are the test suite's tiny random checkpoints of the real architectures
(tests/reference/make_fixtures.sh): random weights show what a plan does to the arithmetic,
not what it does to a trained model's ranking (docs/benchmarks.md says what real weights add).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import REPO, isa_flags, machine, run_engine, shown, write_doc_section  # noqa: E402

from models.common.multilingual_corpus import passage, query  # noqa: E402

PLANS = {"fp32": {"model.dtype": "fp32"},
         "bf16": {"model.dtype": "bf16"},
         "int8": {"model.dtype": "fp32", "model.quantize": "int8", "model.graph": "onednn"},
         "bf16+int8": {"model.dtype": "bf16", "model.quantize": "int8", "model.graph": "onednn"}}
EMBEDDERS = ["st_bert_tiny", "st_modernbert_tiny", "st_qwen3_tiny"]
CROSS_ENCODERS = ["ce_bert_tiny", "ce_modernbert_tiny"]
BEGIN, END = "<!-- precision_agreement begin -->", "<!-- precision_agreement end -->"


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)) or 1.0)


def nearest(queries: list[list[float]], passages: list[list[float]]) -> list[int]:
    return [max(range(len(passages)), key=lambda p: cosine(q, passages[p])) for q in queries]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixtures", type=Path, default=REPO / "build" / "test_fixtures")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queries", type=int, default=64)
    parser.add_argument("--passages", type=int, default=256)
    args = parser.parse_args()

    rng = random.Random(7)
    queries = [query(rng) for _ in range(args.queries)]
    passages = [passage(rng, sentences=2) for _ in range(args.passages)]
    work = Path(tempfile.mkdtemp(prefix="precision-"))
    texts = work / "texts.jsonl"
    texts.write_text("".join(json.dumps({"text": t}) + "\n" for t in queries + passages))
    records = work / "records.jsonl"
    records.write_text("".join(
        json.dumps({"query": q, "passages": passages[i * 4 % len(passages):][:8]}) + "\n"
        for i, q in enumerate(queries)))
    common = {"model.threads": args.threads, "task.max_length": 128}
    lines = ["| bundle | plan | min cosine to fp32 | mean cosine | nearest passage agrees | "
             "max score change | best passage agrees |", "| --- | --- | --- | --- | --- | --- | --- |"]
    command = None
    for name in EMBEDDERS:
        bundle = args.fixtures / name
        runs = {}
        for plan, settings in PLANS.items():
            run = run_engine(work, f"{name}-{plan}", bundle, texts,
                             {**common, **settings, "task.kind": "embed",
                              "model.options.prompt": "none"},
                             config=REPO / "configs" / "embed.yaml")
            runs[plan] = [r["dense"] for r in run.records]
            command = command or run.command
        base = runs["fp32"]
        base_nearest = nearest(base[:args.queries], base[args.queries:])
        for plan in ("bf16", "int8", "bf16+int8"):
            cosines = [cosine(a, b) for a, b in zip(runs[plan], base)]
            agree = sum(a == b for a, b in zip(
                nearest(runs[plan][:args.queries], runs[plan][args.queries:]), base_nearest))
            lines.append(f"| {name} | {plan} | {min(cosines):.6f} | "
                         f"{sum(cosines) / len(cosines):.6f} | "
                         f"{100 * agree / args.queries:.1f}% | | |")
    for name in CROSS_ENCODERS:
        bundle = args.fixtures / name
        runs = {plan: run_engine(work, f"{name}-{plan}", bundle, records,
                                 {**common, **settings, "task.kind": "rerank",
                                  "model.options.activation": "none"})
                for plan, settings in PLANS.items()}
        base = runs["fp32"]
        best = [r["results"][0]["index"] for r in base.records]
        for plan in ("bf16", "int8", "bf16+int8"):
            delta = max(abs(a - b) for a, b in zip(runs[plan].scores, base.scores))
            agree = sum(r["results"][0]["index"] == b for r, b in zip(runs[plan].records, best))
            lines.append(f"| {name} | {plan} | | | | {delta:.4f} (logit) | "
                         f"{100 * agree / len(best):.1f}% |")
    flags = isa_flags()
    doc = ["## Precision plans on the published-directory bundles", "",
           f"Machine: {machine()}; CPU flags: {' '.join(flags)}; {args.threads} threads.",
           f"Command: `python bench/precision_agreement.py --threads {args.threads}` (each run: "
           f"`{shown(command).replace(str(work), 'WORK')}` with the plan's `--set`s).",
           f"{args.queries} queries and {args.passages} passages from the multilingual corpus, "
           "max_length 128; the tiny random checkpoints of the test suite. Random weights make "
           "activations O(1) (spread_weights), so these show the plans' arithmetic error; a "
           "trained model's margins decide what that error does to a ranking, and no real "
           "checkpoint can be downloaded here.", "", *lines]
    write_doc_section(REPO / "docs" / "benchmarks.md", BEGIN, END, doc)
    print("\n".join(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
