#!/usr/bin/env python3
"""The peer benchmark: the engine against the tools users would pick instead, side by side in one
run: the same random-weight checkpoint, the same (query, passage) pairs, the same thread count,
every system in a fresh process of its own. Prints a table and writes it, with the command, into
docs/benchmarks.md (between the peer_bench markers) and a plot into docs/peer_bench.png.

Usage (after tools/setup.sh, which also installs requirements-bench.txt):
  .venv/bin/python bench/peer_bench.py [--parts cross_encoder[,bge_m3,llm_reranker]]
      [--shape bce-reranker-base|tiny] [--threads 2] [--queries 16] [--per-query 8]
      [--batch-size 32] [--passage-words 60,120] [--systems a,b,...] [--gemm-only]
      [--work build/peer_bench] [--doc docs/benchmarks.md] [--plot docs/peer_bench.png | --no-doc]

Passages are drawn from bench_common.WORDS; this checkpoint family's small tokenizer makes about
4.4 tokens of a word, so 60 to 120 words give pairs of about 270 to 512 tokens (median ~410).

Parts and systems (`--systems` takes these names; bench/peer_systems.py has the peers):
  cross_encoder  the bce-reranker-base shape (XLM-R base; tools/export.py --tiny --shape):
                 engine-fp32, engine-bf16 (the graph traced in bf16), engine-bf16-int8 (the
                 same with its int8 table), engine-bf16-autocast (the fp32 graph run with
                 model.dtype bf16), engine-fp32-fused and engine-bf16-fused (model.graph=fused:
                 frozen, oneDNN Graph), engine-aoti-fp32 (an AOTInductor package compiled
                 here, tools/export.py --format aoti),
                 flag-fp32 (FlagReranker, the reference), st-fp32, st-bf16 (sentence-transformers
                 CrossEncoder), ort-fp32, ort-opt, ort-int8 (ONNX Runtime), ov-fp32, ov-bf16,
                 ov-int8 (OpenVINO), ct2-fp32, ct2-int8 (CTranslate2)
  bge_m3         dense embeddings of every query and passage; a pair's score is the dot product
                 of its two vectors: the engine (configs/bge-m3.yaml, task embed) against
                 flag-m3-fp32 (BGEM3FlagModel, the reference)
  llm_reranker   the engine (configs/llm-rerank.yaml) against flag-llm-fp32 (FlagLLMReranker)
More engine rows: --engine-variant LABEL BUNDLE [KEY=VALUE ...], BUNDLE one of fp32, bf16,
bf16-int8, the pairs --set overrides (e.g. a compute path being tried).

Every peer gets the items sorted by length, longest first, in batches of --batch-size padded to
the longest in the batch, tokenized by the checkpoint's HF tokenizer (max_length 512,
truncation), warms up on one batch, and is timed from texts to scores. The engine batches by
itself (sorted by length, cut where the length drops, padded to a multiple of 8); its time is its
summary's seconds less its warm-up pass (memory.warmup, the summary's warmup_seconds), minus the
same for a run on an empty input, so neither model loading nor the warm-up counts.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (ENGINE, PYTHON, REPO, checkpoint_of, export, export_sized, log,
                          run_engine, text, traced)

import peer_report

# Published sizes for families whose exporter has no TINY_SHAPES entry for them.
BENCH_SHAPES = {"bge_m3": {"bge-m3": dict(hidden=1024, layers=24, heads=16, intermediate=4096)}}

# (system name, label, bundle, --set overrides). The bundle is the fp32 export, or the same
# checkpoint exported with its graph traced in bf16 (bench_common.traced), with or without the
# word-embedding table in int8. The engine's default graph (model.graph onednn) runs the linear
# layers as oneDNN primitives; fused freezes the graph into oneDNN Graph partitions.
ENGINE_VARIANTS = [
    ("engine-fp32", "engine fp32", "fp32", {}),
    ("engine-bf16", "engine bf16 graph", "bf16", {}),
    ("engine-bf16-int8", "engine bf16 graph + int8 table", "bf16-int8", {}),
    ("engine-int8", "engine bf16 graph, int8 linear layers", "bf16", {"model.quantize": "int8"}),
    ("engine-int8-table", "engine bf16 graph, int8 linear layers + int8 table", "bf16-int8",
     {"model.quantize": "int8"}),
    ("engine-fp32-int8", "engine fp32 graph, int8 linear layers", "fp32",
     {"model.quantize": "int8"}),
    ("engine-fp32-int8-table", "engine fp32 graph, int8 linear layers + int8 table",
     "fp32-int8", {"model.quantize": "int8"}),
    ("engine-aoti-fp32", "engine fp32, AOTInductor package", "fp32-aoti", {}),
    ("engine-bf16-autocast", "engine fp32 graph under bf16 autocast", "fp32",
     {"model.dtype": "bf16"}),
    ("engine-fp32-fused", "engine fp32, fused graph", "fp32", {"model.graph": "fused"}),
    ("engine-bf16-fused", "engine bf16 graph, fused", "bf16", {"model.graph": "fused"}),
]


@dataclass
class Part:
    family: str
    config: str
    kind: str                  # the engine's task.kind: rerank, or embed (texts, then q.p)
    peers: list[str]           # worker systems, the reference first
    shape_option: str


PARTS = {
    "cross_encoder": Part("cross_encoder", "rerank.yaml", "rerank",
                          ["flag-fp32", "st-fp32", "st-bf16", "ort-fp32", "ort-opt", "ort-int8",
                           "ov-fp32", "ov-bf16", "ov-int8", "ct2-fp32", "ct2-int8"], "shape"),
    "bge_m3": Part("bge_m3", "bge-m3.yaml", "embed", ["flag-m3-fp32"], "m3_shape"),
    "llm_reranker": Part("llm_reranker", "llm-rerank.yaml", "rerank", ["flag-llm-fp32"],
                         "llm_shape"),
}


@dataclass
class Row:
    system: str
    label: str
    dtype: str                 # the GEMM peak it is measured against: fp32, bf16 or int8
    seconds: float = 0.0
    peak_rss: int = 0
    scores: list[float] = field(default_factory=list)   # canonical pair order
    detail: str = ""
    skipped: str = ""
    metrics: dict = field(default_factory=dict)
    command: list[str] = field(default_factory=list)     # the engine's
    real_tokens: int | None = None                       # as the engine counted them


# ------------------------------------------------------------------------------------------------
# Models and inputs
# ------------------------------------------------------------------------------------------------

def family_shapes(family: str) -> list[str]:
    code = (f"import json, models.{family}.export as f; "
            "print(json.dumps(sorted(getattr(f, 'TINY_SHAPES', {}))))")
    out = subprocess.run([str(PYTHON), "-c", code], cwd=REPO, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def export_part(part: Part, shape: str, folder: Path) -> Path:
    out = folder / f"{part.family}-{shape}"
    if shape == "tiny" or shape in family_shapes(part.family):
        return export(part.family, shape, out)
    sizes = BENCH_SHAPES.get(part.family, {}).get(shape)
    if sizes is None:
        raise SystemExit(f"--{part.shape_option.replace('_', '-')} {shape}: not a shape of "
                         f"{part.family} (tiny, {', '.join(family_shapes(part.family))})")
    return export_sized(part.family, sizes, out)


def make_queries(count: int, per_query: int, words: tuple[int, int], seed: int) -> list:
    rng = random.Random(seed)
    return [(text(rng, rng.randint(4, 12)), [text(rng, rng.randint(*words))
                                              for _ in range(per_query)]) for _ in range(count)]


def token_lengths(checkpoint: Path, items: list, max_length: int) -> list[int]:
    """Real (unpadded) tokens of each item under the checkpoint's HF fast tokenizer."""
    from tokenizers import Tokenizer
    tokenizer = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    tokenizer.enable_truncation(max_length)
    inputs = [tuple(item) if isinstance(item, (list, tuple)) else item for item in items]
    return [len(e.ids) for e in tokenizer.encode_batch(inputs)]


def llm_lengths(checkpoint: Path, pairs: list, max_length: int) -> list[int]:
    """Real tokens of each pair as FlagLLMReranker (FlagEmbedding 1.4.2) builds it: <bos> + "A: "
    query (cut to 3/4 of max_length) + "\\n" + "B: " passage, cut only in the passage to
    max_length + the separator and prompt, then "\\n" + the prompt."""
    import yaml
    from tokenizers import Tokenizer
    options = yaml.safe_load((REPO / "configs" / "llm-rerank.yaml").read_text())["model"]["options"]
    tokenizer = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    count = lambda s, cap=None: min(len(tokenizer.encode(s, add_special_tokens=False).ids),
                                    cap or 1 << 30)
    tail = count("\n") + count(options["prompt"])
    return [min(1 + count(options["query_instruction"] + q, max_length * 3 // 4) + count("\n")
                + count(options["passage_instruction"] + p, max_length), max_length + tail) + tail
            for q, p in pairs]


def flops(arch: dict, length: int) -> float:
    """Multiply-adds x 2 of one sequence of `length` real tokens: the linear layers and the two
    attention products (softmax, norms and the head left out)."""
    h, layers = arch["hidden"], arch["layers"]
    if arch.get("kv_heads") is None:  # BERT-like encoder
        return layers * (2 * length * (4 * h * h + 2 * h * arch["intermediate"])
                         + 4 * length * length * h)
    q, kv = arch["heads"] * arch["head_dim"], arch["kv_heads"] * arch["head_dim"]
    linear = 2 * h * q + 2 * h * kv + 3 * h * arch["intermediate"]
    return layers * (2 * length * linear + 4 * length * length * q)


def architecture(checkpoint: Path) -> dict:
    c = json.loads((checkpoint / "config.json").read_text())
    arch = {"hidden": c["hidden_size"], "layers": c["num_hidden_layers"],
            "heads": c["num_attention_heads"], "intermediate": c["intermediate_size"]}
    if c.get("model_type") == "gemma":
        arch.update(kv_heads=c["num_key_value_heads"], head_dim=c["head_dim"])
    return arch


# ------------------------------------------------------------------------------------------------
# Running the systems
# ------------------------------------------------------------------------------------------------

def run_worker(system: str, spec: Path, out: Path, timeout: float, prepare: bool = True) -> dict:
    """`system` in a fresh process of this script: first its preparation (conversions, in a
    process of its own so they do not count in the peak RSS), then the timed run."""
    result = out / f"{system}.result.json"
    for step in ([["--prepare"]] if prepare else []) + [[]]:
        command = [str(PYTHON), __file__, "--worker", system, "--spec", str(spec),
                   "--result", str(result), *step]
        with open(out / f"{system}{'-prepare' if step else ''}.log", "w") as log_file:
            status = subprocess.run(command, cwd=REPO, stdout=log_file, stderr=subprocess.STDOUT,
                                    timeout=timeout).returncode
        if status != 0:
            lines = (out / log_file.name).read_text().strip().splitlines() or ["no output"]
            return {"skipped": f"failed ({lines[-1][:200]}; see {log_file.name})"}
        answer = json.loads(result.read_text())
        if "skipped" in answer:
            return answer
    return answer


def worker_row(system: str, label: str, dtype: str, spec: dict, spec_path: Path, out: Path,
               order: list[int], timeout: float) -> Row:
    from peer_systems import CONVERTED
    row = Row(system, label, dtype)
    result = run_worker(system, spec_path, out, timeout, prepare=system in CONVERTED)
    if "skipped" in result:
        row.skipped = result["skipped"]
        return row
    row.seconds, row.peak_rss = result["seconds"], result["peak_rss"]
    row.detail = result.get("detail", "")
    if result.get("tokens") not in (None, spec["tokens"]):
        row.detail += f" (tokenized {result['tokens']} tokens, not {spec['tokens']})"
    outputs = result["vectors"] if "vectors" in result else result["scores"]
    canonical = [None] * len(order)
    for position, index in enumerate(order):
        canonical[index] = outputs[position]
    row.scores = canonical
    return row


def engine_rows(part: Part, bundle: Path, work: Path, inputs: Path, empty: Path, args,
                variants: list) -> list[Row]:
    bundles = {"fp32": lambda: bundle,
               "bf16": lambda: traced(bundle, f"{bundle.name}-bf16", "bf16"),
               "bf16-int8": lambda: traced(bundle, f"{bundle.name}-bf16-tint8", "bf16", "int8"),
               "fp32-int8": lambda: traced(bundle, f"{bundle.name}-fp32-tint8", "fp32", "int8"),
               "fp32-aoti": lambda: traced(bundle, f"{bundle.name}-aoti", "fp32",
                                           model_format="aoti")}
    common = {"task.kind": part.kind, "model.threads": args.threads, "memory.warmup": "true",
              "task.max_length": args.max_length, "batching.max_batch_size": args.batch_size,
              "batching.max_tokens": 2 * args.batch_size * args.max_length}
    if part.kind == "embed":
        common["model.options.outputs"] = "dense"
    config = REPO / "configs" / part.config
    rows = []
    for name, label, which, settings in variants:
        if args.systems and name not in args.systems:
            continue
        dtype = ("int8" if settings.get("model.quantize") == "int8"
                 else "bf16" if "bf16" in which or settings.get("model.dtype") == "bf16" else "fp32")
        row = Row(name, label, dtype, detail=", ".join(f"{k}={v}" for k, v in settings.items()))
        try:
            chosen = bundles[which]()
            full = run_engine(work, name, chosen, inputs, {**common, **settings}, config=config)
            idle = run_engine(work, f"{name}-empty", chosen, empty, {**common, **settings},
                              config=config)
        except (RuntimeError, subprocess.CalledProcessError) as error:
            row.skipped = str(error)
            rows.append(row)
            continue
        # The warm-up pass (the model's first call, whose time varies from run to run) is left
        # out of both; what remains of the empty run is the cost of a job around no records.
        busy = lambda run: run.summary["seconds"] - run.summary.get("warmup_seconds", 0.0)
        row.seconds = max(busy(full) - busy(idle), 1e-6)
        row.peak_rss = full.peak_rss
        row.scores = ([r["dense"] for r in full.records] if part.kind == "embed"
                      else full.scores)
        row.command = full.command
        row.real_tokens = full.summary["real_tokens"]
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------------
# Comparing with the reference
# ------------------------------------------------------------------------------------------------

def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-b of two score lists over the same passages."""
    concordant = discordant = tied_a = tied_b = pairs = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            pairs += 1
            da, db = a[i] - a[j], b[i] - b[j]
            tied_a += da == 0
            tied_b += db == 0
            if da * db > 0:
                concordant += 1
            elif da * db < 0:
                discordant += 1
    denominator = math.sqrt((pairs - tied_a) * (pairs - tied_b))
    return (concordant - discordant) / denominator if denominator else 1.0


def pair_scores(row: Row, kind: str, queries: int, per_query: int) -> list[float]:
    """Scores in (query, passage) order; for embeddings, the dot product of the two vectors."""
    if kind != "embed":
        return row.scores
    vectors = row.scores  # queries first, then every query's passages
    return [sum(x * y for x, y in zip(vectors[q], vectors[queries + q * per_query + p]))
            for q in range(queries) for p in range(per_query)]


def compare(rows: list[Row], reference: Row | None, kind: str, queries: int, per_query: int,
            tokens: int, total_flops: float, items: int, peaks: dict) -> None:
    ref = pair_scores(reference, kind, queries, per_query) if reference and not \
        reference.skipped else None
    for row in rows:
        if row.skipped:
            continue
        peak = peaks.get(row.dtype) or peaks.get("bf16")
        gflops = total_flops / row.seconds / 1e9
        row.metrics = {"items_per_s": items / row.seconds, "tokens_per_s": tokens / row.seconds,
                       "gflops": gflops, "of_peak": gflops / peak if peak else None}
        if ref is None:
            continue
        mine = pair_scores(row, kind, queries, per_query)
        groups = [(mine[q * per_query:(q + 1) * per_query], ref[q * per_query:(q + 1) * per_query])
                  for q in range(queries)]
        row.metrics.update(
            max_diff=max(abs(a - b) for a, b in zip(mine, ref)),
            top1=sum(m.index(max(m)) == r.index(max(r)) for m, r in groups) / queries,
            tau=statistics.mean(kendall_tau(m, r) for m, r in groups))


# ------------------------------------------------------------------------------------------------
# One part, the GEMM peak, the command line
# ------------------------------------------------------------------------------------------------

def run_part(name: str, args, peaks: dict) -> dict:
    part, shape = PARTS[name], getattr(args, PARTS[name].shape_option)
    work = args.work / f"{name}-{shape}"
    work.mkdir(parents=True, exist_ok=True)
    bundle = export_part(part, shape, args.work / "models")
    checkpoint = checkpoint_of(bundle)
    queries = args.queries if name == "cross_encoder" else args.other_queries
    records = make_queries(queries, args.per_query, args.passage_words, seed=11)
    pairs = [(q, p) for q, passages in records for p in passages]
    items = ([q for q, _ in records] + [p for _, ps in records for p in ps]
             if part.kind == "embed" else pairs)
    lengths = (llm_lengths(checkpoint, items, args.max_length) if name == "llm_reranker"
               else token_lengths(checkpoint, items, args.max_length))
    order = sorted(range(len(items)), key=lambda i: -lengths[i])
    arch = architecture(checkpoint)
    spec = {"part": name, "checkpoint": str(checkpoint), "artifacts": str(work / "converted"),
            "items": [items[i] for i in order], "batch_size": args.batch_size,
            "max_length": args.max_length, "threads": args.threads, "arch": arch,
            "tokens": sum(lengths)}
    spec_path = work / "spec.json"
    spec_path.write_text(json.dumps(spec, ensure_ascii=False))
    inputs, empty = work / "records.jsonl", work / "empty.jsonl"
    lines = ([{"id": i, "text": item} for i, item in enumerate(items)] if part.kind == "embed"
             else [{"id": i, "query": q, "passages": ps} for i, (q, ps) in enumerate(records)])
    inputs.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
                      encoding="utf-8")
    empty.write_text("")
    log(f"{name} ({shape}, {arch}): {len(items)} {'texts' if part.kind == 'embed' else 'pairs'}, "
        f"real tokens {peer_report.distribution(lengths, args.max_length)}")

    from peer_systems import PEERS
    rows = []
    selected = [s for s in part.peers if not args.systems or s in args.systems]
    if selected and selected[0] == part.peers[0]:  # the reference first
        rows.append(worker_row(selected[0], *PEERS[selected[0]][:2], spec, spec_path, work,
                               order, args.worker_timeout))
        log(peer_report.progress_line(rows[-1]))
        selected = selected[1:]
    for row in engine_rows(part, bundle, work, inputs, empty, args, args.variants):
        rows.append(row)
        log(peer_report.progress_line(row))
        if row.real_tokens not in (None, spec["tokens"]):
            counted = f"engine counted {row.real_tokens} real tokens, HF {spec['tokens']}"
            row.detail = f"{row.detail}, {counted}" if row.detail else counted
    for system in selected:
        rows.append(worker_row(system, *PEERS[system][:2], spec, spec_path, work, order,
                               args.worker_timeout))
        log(peer_report.progress_line(rows[-1]))
    reference = rows[0] if rows and rows[0].system == part.peers[0] else None
    total = sum(flops(arch, n) for n in lengths)
    compare(rows, reference, part.kind, queries, args.per_query, spec["tokens"], total,
            len(items), peaks)
    return {"name": name, "shape": shape, "arch": arch, "rows": rows, "lengths": lengths,
            "items": len(items), "queries": queries, "kind": part.kind,
            "gflop_per_item": total / len(items) / 1e9}


def gemm_peaks(args) -> tuple[dict, list]:
    spec = args.work / "gemm-spec.json"
    spec.write_text(json.dumps({"threads": args.threads, "gemm_size": 2048}))
    result = run_worker("gemm", spec, args.work, args.worker_timeout, prepare=False)
    if "skipped" in result:
        raise SystemExit(f"GEMM peak: {result['skipped']}")
    for entry in result["gemm"]:
        shown = f"{entry['gflops']:.0f} GFLOP/s" if entry["gflops"] else entry["error"]
        log(f"GEMM 2048^3, {args.threads} threads, {entry['dtype']} {entry['label']}: {shown}")
    peaks = {}
    for entry in result["gemm"]:
        if entry["gflops"]:
            peaks[entry["dtype"]] = max(peaks.get(entry["dtype"], 0), entry["gflops"])
    if "int8" in peaks and "bf16" in peaks:
        # int8 rows never get a lower bar than bf16 ones: a disturbed or slow int8 product
        # would otherwise flatter them.
        peaks["int8"] = max(peaks["int8"], peaks["bf16"])
    return peaks, result["gemm"]


def parse_args(argv: list[str]):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="cross_encoder")
    parser.add_argument("--shape", default="bce-reranker-base",
                        help="cross_encoder shape: tiny or a TINY_SHAPES name")
    parser.add_argument("--m3-shape", default="bge-m3", help="bge_m3 shape: tiny or bge-m3")
    parser.add_argument("--llm-shape", default="tiny", help="llm_reranker shape")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queries", type=int, default=16, help="cross_encoder queries")
    parser.add_argument("--other-queries", type=int, default=4,
                        help="queries of the bge_m3 and llm_reranker parts")
    parser.add_argument("--per-query", type=int, default=8, help="passages per query")
    parser.add_argument("--passage-words", default="60,120",
                        help="passage length range in words (this tokenizer: ~4.4 tokens a word)")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--systems", default="", help="comma list: run only these")
    parser.add_argument("--engine-variant", nargs="+", action="append", default=[],
                        metavar="LABEL BUNDLE [KEY=VALUE]",
                        help="another engine row: BUNDLE fp32|bf16|bf16-int8, --set overrides")
    parser.add_argument("--gemm-only", action="store_true", help="measure the GEMM peak only")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "peer_bench")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "peer_bench.png")
    parser.add_argument("--no-doc", action="store_true", help="print only: no doc, no plot")
    parser.add_argument("--worker-timeout", type=float, default=3600)
    args = parser.parse_args(argv)
    args.parts = [p for p in args.parts.split(",") if p]
    for part in args.parts:
        if part not in PARTS:
            parser.error(f"--parts: {part!r} is not one of {sorted(PARTS)}")
    args.systems = {s for s in args.systems.split(",") if s}
    low, high = (int(w) for w in args.passage_words.split(","))
    args.passage_words = (low, high)
    args.variants = list(ENGINE_VARIANTS)
    for variant in args.engine_variant:
        if len(variant) < 2 or variant[1] not in ("fp32", "bf16", "bf16-int8", "fp32-int8") or \
                any("=" not in kv for kv in variant[2:]):
            parser.error(f"--engine-variant {shlex.join(variant)}: want LABEL "
                         "fp32|bf16|bf16-int8|fp32-int8 [KEY=VALUE ...]")
        slug = re.sub(r"\W+", "-", variant[0].lower()).strip("-")
        name = slug if slug.startswith("engine") else f"engine-{slug}"
        args.variants.append((name, variant[0], variant[1],
                              dict(kv.split("=", 1) for kv in variant[2:])))
    known = {v[0] for v in args.variants} | {s for p in PARTS.values() for s in p.peers}
    if args.systems - known:
        parser.error(f"--systems: {', '.join(sorted(args.systems - known))} unknown; known: "
                     f"{', '.join(sorted(known))}")
    return args


def main(argv: list[str]) -> int:
    if argv[:1] == ["--worker"]:
        import peer_systems
        values = dict(zip(argv[2::2], argv[3::2]))
        return peer_systems.worker_main(argv[1], Path(values["--spec"]),
                                        Path(values["--result"]), "--prepare" in argv)
    args = parse_args(argv)
    if not ENGINE.is_file():
        raise SystemExit(f"{ENGINE} is missing; run tools/setup.sh first")
    threads = str(args.threads)
    os.environ.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, RAYON_NUM_THREADS=threads,
                      OPENBLAS_NUM_THREADS=threads, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                      TOKENIZERS_PARALLELISM="true")
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.time()
    peaks, gemm = gemm_peaks(args)
    parts = [] if args.gemm_only else [run_part(name, args, peaks) for name in args.parts]
    command = shlex.join([".venv/bin/python", "bench/peer_bench.py", *argv])
    lines = peer_report.doc_lines(command, args, peaks, gemm, parts,
                                  os.path.relpath(args.plot, args.doc.parent))
    print("\n".join(lines))
    if not args.no_doc:
        peer_report.write(args.doc, lines)
        if parts:
            peer_report.plot(parts, args.plot)
        log(f"wrote {args.doc} and {args.plot}")
    log(f"peer benchmark took {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
