#!/usr/bin/env python3
"""The LLM rerankers' throughput beside their own reference code, in one run on this CPU: the
engine's rerank job against the Qwen3-Reranker model card's code (transformers), mxbai-rerank's
MxbaiRerankV2.rank (PyPI) and FlagEmbedding's LayerWiseFlagLLMReranker.compute_score, each on the
same rerank records and on a random checkpoint of its published shape. Writes its table, with the
command and the CPU, to docs/benchmarks.md.

Usage:
  python bench/llm_rerankers.py [--work DIR] [--threads 2] [--queries 4] [--passages 8]
      [--only qwen3-reranker,mxbai-rerank-v2,minicpm-layerwise]

Shapes (models/llm_reranker/export.py TINY_SHAPES, random weights, the tiny tokenizers):
Qwen3-Reranker-0.6B, mxbai-rerank-base-v2 (Qwen2-0.5B), and bge-reranker-v2-minicpm-layerwise's
widths with 12 of its 40 layers (cutoff layer 12; the 2.7B original takes minutes a pass on two
cores). Every side gets the pairs in batches of 8, fp32, the same threads; the time is the peer's
scoring calls and the engine job's seconds (reading, tokenizing, scoring, writing; the model load
of neither). Scores are compared too: the engine must give the peer's within 1e-4.
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


BEGIN, END = "<!-- llm_rerankers begin -->", "<!-- llm_rerankers end -->"
BATCH = 8

# name: (TINY_SHAPES entry, extra export arguments, the peer, its label)
RERANKERS = {
    "qwen3-reranker": ("qwen3-0.6b", [], "qwen3", "Qwen3-Reranker model card (transformers)"),
    "mxbai-rerank-v2": ("mxbai-rerank-base-v2", [], "mxbai", "mxbai-rerank 0.1.6 MxbaiRerankV2.rank"),
    "minicpm-layerwise": ("minicpm-layerwise-12-layers", ["--cutoff-layer", "12"], "layerwise",
                          "FlagEmbedding 1.4.2 LayerWiseFlagLLMReranker"),
}

# Each peer in a child process: the records on stdin, "seconds" and the scores (record order,
# passage order) on its last stdout line.
PEER = r"""
import json, sys, time, torch
sys.path.insert(0, REPO)
torch.set_num_threads(THREADS)
records = json.loads(sys.stdin.read())
pairs = [(r["query"], p) for r in records for p in r["passages"]]
scores, spent = [], 0.0
if PEER == "qwen3":
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from models.llm_reranker.templates import QWEN3_INSTRUCTION, QWEN3_SUFFIX, QWEN3_SYSTEM
    tokenizer = AutoTokenizer.from_pretrained(CHECKPOINT, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(CHECKPOINT, dtype=torch.float32).eval()
    prefix = tokenizer.encode(QWEN3_SYSTEM, add_special_tokens=False)
    suffix = tokenizer.encode(QWEN3_SUFFIX, add_special_tokens=False)
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    with torch.no_grad():
        for start in range(0, len(pairs), BATCH):
            begin = time.perf_counter()
            texts = [f"<Instruct>: {QWEN3_INSTRUCTION}\n<Query>: {q}\n<Document>: {d}"
                     for q, d in pairs[start:start + BATCH]]
            inputs = tokenizer(texts, padding=False, truncation="longest_first",
                               return_attention_mask=False,
                               max_length=8192 - len(prefix) - len(suffix))
            inputs["input_ids"] = [prefix + ids + suffix for ids in inputs["input_ids"]]
            inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt")
            logits = model(**inputs).logits[:, -1, :]
            got = torch.stack([logits[:, no], logits[:, yes]], 1).log_softmax(1)[:, 1].exp()
            spent += time.perf_counter() - begin
            scores += got.tolist()
elif PEER == "mxbai":
    from mxbai_rerank import MxbaiRerankV2
    reranker = MxbaiRerankV2(CHECKPOINT, device="cpu", torch_dtype=torch.float32)
    for record in records:
        begin = time.perf_counter()
        ranked = reranker.rank(record["query"], record["passages"], batch_size=BATCH,
                               top_k=len(record["passages"]), sort=False)
        spent += time.perf_counter() - begin
        scores += [r.score for r in sorted(ranked, key=lambda r: r.index)]
else:
    from FlagEmbedding import LayerWiseFlagLLMReranker
    import FlagEmbedding.inference.reranker.decoder_only.layerwise as layerwise
    layerwise.trange = lambda *a, **k: range(*a)
    reranker = LayerWiseFlagLLMReranker(CHECKPOINT, use_fp16=False, devices="cpu",
                                        cutoff_layers=[CUTOFF])
    reranker.model.config.use_cache = False  # FlagEmbedding 1.4.2's MiniCPM code, transformers 4.57
    begin = time.perf_counter()
    scores = [float(x) for x in reranker.compute_score([list(p) for p in pairs],
                                                       batch_size=BATCH, max_length=512)]
    spent = time.perf_counter() - begin
print(json.dumps({"seconds": spent, "scores": scores}))
"""



def peer(name: str, checkpoint: Path, recs: list[dict], threads: int, cutoff: int) -> dict:
    code = (f"REPO = {str(REPO)!r}\nTHREADS = {threads}\nPEER = {name!r}\nBATCH = {BATCH}\n"
            f"CHECKPOINT = {str(checkpoint)!r}\nCUTOFF = {cutoff}\n" + PEER)
    done = subprocess.run([str(PYTHON), "-c", code], input=json.dumps(recs), text=True,
                          capture_output=True, cwd=REPO, env={**os.environ,
                                                              "TOKENIZERS_PARALLELISM": "false"})
    if done.returncode != 0:
        raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=REPO / "build" / "bench" / "llm_rerankers")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queries", type=int, default=4)
    parser.add_argument("--passages", type=int, default=8)
    parser.add_argument("--only", default=",".join(RERANKERS))
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    recs = rerank_records(args.queries, args.passages, seed=17)
    inputs = args.work / "records.jsonl"
    inputs.write_text("".join(json.dumps(r) + "\n" for r in recs))

    rows = []
    for name in args.only.split(","):
        shape, extra, peer_name, label = RERANKERS[name]
        bundle = args.work / shape
        checkpoint = checkpoint_of(bundle)
        if not (bundle / "engine.json").is_file():
            print(f"exporting the {shape} shape into {bundle}", flush=True)
            subprocess.run([str(PYTHON), "tools/export.py", "--family", "llm_reranker", "--tiny",
                            "--shape", shape, *extra, "--out", str(bundle),
                            "--tiny-checkpoint-dir", str(checkpoint)],
                           cwd=REPO, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
        cutoff = int(extra[1]) if extra else 0
        reference = peer(peer_name, checkpoint, recs, args.threads, cutoff)
        engine = {}
        for reuse in (False, True):
            engine[reuse] = run_engine(
                args.work, f"{name}_reuse_{reuse}", bundle, inputs,
                {"task.kind": "rerank", "task.max_length": 512 if peer_name == "layerwise"
                 else 8192, "model.threads": args.threads,
                 "model.options.prefix_reuse": str(reuse).lower(),
                 "batching.max_batch_size": BATCH, "batching.max_tokens": 16384},
                config=REPO / "configs" / "llm-rerank.yaml")
        pairs = len(reference["scores"])
        worst = max(abs(a - b) for a, b in zip(engine[True].scores, reference["scores"]))
        seconds = {reuse: engine[reuse].summary["seconds"] for reuse in (False, True)}
        rows.append((name, label, pairs, engine[False].summary["real_tokens"],
                     reference["seconds"], seconds[False], seconds[True], worst))
        print(f"{name}: {pairs} pairs; {label} {pairs / reference['seconds']:.2f} pairs/s, engine "
              f"whole {pairs / seconds[False]:.2f}, prefix once {pairs / seconds[True]:.2f}; "
              f"max |engine - peer| {worst:.1e}", flush=True)
        if worst > 1e-4:
            raise RuntimeError(f"{name}: the engine's scores differ from the peer's by {worst:.3g}")

    command = shown([str(PYTHON), "bench/llm_rerankers.py", "--threads", str(args.threads),
                     "--queries", str(args.queries), "--passages", str(args.passages)])
    flags = " ".join(isa_flags())
    lines = [f"`{command}` on {machine()} ({flags}), {args.threads} threads, fp32, "
             f"{time.strftime('%Y-%m-%d')}: {args.queries} queries x {args.passages} passages of "
             "three sentences, batches of 8, random weights of each published shape (the "
             "layerwise one with 12 of its 40 layers, cutoff 12). Pairs per second of the "
             "peer's scoring calls and of the engine job (tokenizing included, model load of "
             "neither).", "",
             "| reranker | peer | pairs | tokens | peer (pairs/s) | engine, whole (pairs/s) | "
             "engine, prefix once (pairs/s) | engine / peer | max score difference |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, label, pairs, tokens, ref, whole, reused, worst in rows:
        lines.append(f"| {name} | {label} | {pairs} | {tokens} | {pairs / ref:.2f} | "
                     f"{pairs / whole:.2f} | {pairs / reused:.2f} | {ref / reused:.2f}x | "
                     f"{worst:.1e} |")
    write_doc_section(REPO / "docs" / "benchmarks.md", BEGIN, END, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
