#!/usr/bin/env python3
"""What running a rerank record's shared prefix once gains an LLM reranker: the engine's rerank
job on a Qwen3-Reranker-0.6B-shaped random checkpoint with model.options.prefix_reuse true and
false, at 8 and at 32 passages per query, beside the Qwen3-Reranker model card's own code
(transformers with its default attention, SDPA; batches of 8) on the same pairs. Writes its table, with the command and the
CPU, to docs/speed.md.

Usage:
  python bench/llm_prefix_reuse.py [--work DIR] [--threads 2] [--dtype fp32|bf16]

The checkpoint has the published model's layers, widths and heads (TINY_SHAPES "qwen3-0.6b" of
models/llm_reranker/export.py) with random weights and the tiny tokenizer; time is the model's
share of the job (summary model_seconds) and the reference's forward calls.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (PYTHON, REPO, checkpoint_of, isa_flags, machine, rerank_records,  # noqa: E402
                          run_engine, shown, write_doc_section)


BEGIN, END = "<!-- llm_prefix_reuse begin -->", "<!-- llm_prefix_reuse end -->"



def reference_seconds(checkpoint: Path, recs: list[dict], threads: int, dtype: str) -> float:
    """The model card's code on the records' pairs, in batches of 8: its forward calls' time."""
    code = f"""
import json, sys, time, torch
sys.path.insert(0, {str(REPO)!r})
torch.set_num_threads({threads})
from transformers import AutoModelForCausalLM, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained({str(checkpoint)!r}, padding_side="left")
model = AutoModelForCausalLM.from_pretrained({str(checkpoint)!r},
    dtype=torch.{'bfloat16' if dtype == 'bf16' else 'float32'}).eval()
from models.llm_reranker.templates import QWEN3_INSTRUCTION, QWEN3_SUFFIX, QWEN3_SYSTEM
prefix = tokenizer.encode(QWEN3_SYSTEM, add_special_tokens=False)
suffix = tokenizer.encode(QWEN3_SUFFIX, add_special_tokens=False)
yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
pairs = [(r["query"], p) for r in json.loads(sys.stdin.read()) for p in r["passages"]]
spent = 0.0
with torch.no_grad():
    for start in range(0, len(pairs), 8):
        texts = [f"<Instruct>: {{QWEN3_INSTRUCTION}}\\n<Query>: {{q}}\\n<Document>: {{d}}"
                 for q, d in pairs[start:start + 8]]
        inputs = tokenizer(texts, padding=False, truncation="longest_first",
                           return_attention_mask=False, max_length=8192 - len(prefix) - len(suffix))
        inputs["input_ids"] = [prefix + ids + suffix for ids in inputs["input_ids"]]
        inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt")
        begin = time.perf_counter()
        logits = model(**inputs).logits[:, -1, :]
        torch.stack([logits[:, no], logits[:, yes]], 1).log_softmax(1)[:, 1].exp()
        spent += time.perf_counter() - begin
print(spent)
"""
    done = subprocess.run([str(PYTHON), "-c", code], input=json.dumps(recs), text=True,
                          capture_output=True, check=True, cwd=REPO)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "build" / "bench" / "prefix_reuse")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    bundle = args.work / f"qwen3-0.6b-{args.dtype}"
    checkpoint = checkpoint_of(bundle)
    if not (bundle / "engine.json").is_file():
        print(f"exporting the qwen3-0.6b shape ({args.dtype}) into {bundle}", flush=True)
        subprocess.run([str(PYTHON), "tools/export.py", "--family", "llm_reranker", "--tiny",
                        "--shape", "qwen3-0.6b", "--dtype", args.dtype, "--max-length", "8192",
                        "--out", str(bundle), "--tiny-checkpoint-dir", str(checkpoint)],
                       cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    rows = []
    for passages, count in ((8, 2), (32, 1)):
        recs = rerank_records(count, passages, seed=passages)
        inputs = args.work / f"records_{passages}.jsonl"
        inputs.write_text("".join(json.dumps(r) + "\n" for r in recs))
        runs = {}
        for reuse in (False, True):
            runs[reuse] = run_engine(
                args.work, f"reuse_{reuse}_{passages}", bundle, inputs,
                {"task.kind": "rerank", "task.max_length": 8192,
                 "model.threads": args.threads, "model.options.prefix_reuse": str(reuse).lower(),
                 "batching.max_batch_size": 8, "batching.max_tokens": 16384},
                config=REPO / "configs" / "llm-rerank.yaml")
        tokens = runs[False].summary["real_tokens"]
        whole, reused = (runs[r].summary["model_seconds"] for r in (False, True))
        worst = max(abs(a - b) for a, b in zip(runs[False].scores, runs[True].scores))
        reference = reference_seconds(checkpoint, recs, args.threads, args.dtype)
        rows.append((passages, count * passages, tokens, reference, whole, reused, worst))
        print(f"{passages} passages/query: {count * passages} pairs, {tokens} tokens; model card "
              f"{reference:.1f} s, engine whole {whole:.1f} s, reused {reused:.1f} s "
              f"({whole / reused:.2f}x); max |reused - whole| {worst:.2e}", flush=True)

    command = shown([str(PYTHON), "bench/llm_prefix_reuse.py", "--threads", str(args.threads),
                     "--dtype", args.dtype])
    flags = " ".join(isa_flags())
    lines = [f"`{command}` on {machine()} ({flags}), {args.threads} threads, {args.dtype}, "
             f"{time.strftime('%Y-%m-%d')}. Qwen3-Reranker-0.6B's shape (28 layers, 1024 wide, "
             "16/8 heads) with random weights; the model card's code (transformers, its default "
             "SDPA attention, batches of 8) on the same pairs; seconds of model time.", "",
             "| passages per query | pairs | tokens | model card (s) | engine, whole (s) | "
             "engine, prefix once (s) | gain | max score change |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for passages, pairs, tokens, reference, whole, reused, worst in rows:
        lines.append(f"| {passages} | {pairs} | {tokens} | {reference:.1f} | {whole:.1f} | "
                     f"{reused:.1f} | {whole / reused:.2f}x | {worst:.1e} |")
    write_doc_section(REPO / "docs" / "speed.md", BEGIN, END, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
