#!/usr/bin/env python3
"""The launcher benchmark: `engine launch` with two single-thread CPU workers against one, on the
same input, end to end (model loading, the input scan and the merge included). Prints the figures
and writes them, with the commands, into docs/benchmarks.md (between the launch_bench markers).

Usage (after tools/setup.sh):
  .venv/bin/python bench/launch_bench.py [--pairs N] [--runs 2] [--work DIR]
      [--doc docs/benchmarks.md]

The model is the bce-reranker-base shape (XLM-R base: 12 layers, hidden 768; random weights,
small tokenizer) exported in bf16 with its int8 table stored apart, made on the spot by
tools/export.py --tiny --shape as bench/memory_bench.py makes it. Each configuration runs
--runs times; the fastest run is kept, and all are printed.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (ENGINE, REPO, converted, export, log, machine, run_engine, shown,
                          write_doc_section, write_pairs)

BEGIN, END = "<!-- launch_bench:begin -->", "<!-- launch_bench:end -->"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=192)
    parser.add_argument("--work", type=Path, default=REPO / "build" / "memory_bench")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--runs", type=int, default=2, help="runs of each configuration")
    args = parser.parse_args()
    if not ENGINE.is_file():
        parser.error(f"{ENGINE} is missing; run tools/setup.sh first")
    args.work.mkdir(parents=True, exist_ok=True)
    fp32 = export("cross_encoder", "bce-reranker-base", args.work / "bce-base")
    bundle = converted(fp32, "bce-base-bf16-tint8", "bf16", "int8")
    inputs = write_pairs(args.work / "launch_pairs.jsonl", args.pairs, (40, 120), seed=5)
    # No job.* settings: the block size is the engine's own choice (job.block_lines auto).
    settings = {"task.max_length": 256, "model.threads": 1}
    configurations = [
        ("one process, 1 thread", None, "single"),
        ("engine launch, 1 CPU worker of 1 thread", ["launch", "--devices", "cpu:1"], "one"),
        ("engine launch, 2 CPU workers of 1 thread", ["launch", "--devices", "cpu:2"], "two"),
    ]
    results = {}
    for label, subcommand, tag in configurations:
        runs = [run_engine(args.work, f"launch-{tag}-{attempt}", bundle, inputs, settings,
                           subcommand) for attempt in range(args.runs)]
        for run in runs:
            log(f"{label}: {run.seconds:.1f} s, {args.pairs / run.seconds:.2f} pairs/s")
        results[tag] = (label, min(runs, key=lambda run: run.seconds), runs)
    outputs = {tag: (args.work / f"launch-{tag}-0.jsonl").read_bytes() for tag in results}
    same = outputs["single"] == outputs["one"] == outputs["two"]
    speedup = results["one"][1].seconds / results["two"][1].seconds

    command = shlex.join([".venv/bin/python", "bench/launch_bench.py", *sys.argv[1:]])
    lines = ["## engine launch: two CPU workers against one", "",
             f"Measured {time.strftime('%Y-%m-%d')} on {machine()} by `{command}`: "
             f"{args.pairs} (query, passage) pairs of 40 to 120 words, the bce-reranker-base "
             "shape in bf16 with its int8 table, no job settings (the engine's blocks), wall time "
             "of the whole "
             "command (model loading, input scan and merge included), the fastest of "
             f"{args.runs} run(s). "
             "Target: two single-thread workers at least 1.8 times one.", "",
             "| run | wall time | pairs/s | both runs |", "|---|---|---|---|"]
    for tag, (label, best, runs) in results.items():
        lines.append(f"| {label} | {best.seconds:.1f} s | {args.pairs / best.seconds:.2f} | "
                     f"{', '.join(f'{run.seconds:.1f} s' for run in runs)} |")
    lines += ["", f"Two workers against one: **{speedup:.2f}x**. The three outputs are "
              f"{'byte-identical' if same else 'NOT identical'}.", "", "Commands:", ""]
    lines += [f"    {shown(results[tag][1].command)}" for tag in results]
    write_doc_section(args.doc, BEGIN, END, lines)
    print("\n".join(lines))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
