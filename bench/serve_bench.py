#!/usr/bin/env python3
"""The serving benchmark: `engine serve` under 1, 8 and 64 concurrent clients sending rerank
requests of realistic size (a query and 8 passages of 40-80 words), against Infinity
(infinity-emb on the CPU, torch engine) serving the same checkpoint on the same machine, and
against the engine's own batch job on the same work. Prints throughput (pairs/s) and p50/p99
latency per level, failed requests, and with --soak-seconds the engine's resident memory over a
long run; writes the figures, with the commands, into docs/serving.md (between the serve_bench
markers) and a plot of latency against load into docs/serve_latency.png.

Usage (after tools/setup.sh, and tools/setup_infinity.sh for the Infinity peer):
  .venv/bin/python bench/serve_bench.py [--requests-per-level 96] [--levels 1,8,64]
      [--soak-seconds 600] [--no-infinity] [--doc docs/serving.md]

The model is a MiniLM-sized cross-encoder (XLM-R layout: 6 layers, hidden 384, 12 heads,
intermediate 1536, random weights, a small sentencepiece vocabulary) exported by tools/export.py
from a random Hugging Face checkpoint, which Infinity loads as it is; both run in fp32 on the
machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import (ENGINE, REPO, checkpoint_of, export_sized, log, machine, shown, text,
                          write_doc_section)

BEGIN, END = "<!-- serve_bench:begin -->", "<!-- serve_bench:end -->"
SHAPE = dict(hidden=384, layers=6, heads=12, intermediate=1536)
PASSAGES = 8
INFINITY = REPO / ".venv-infinity" / "bin" / "infinity_emb"


def requests_of(count: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    return [{"query": text(rng, rng.randint(4, 12)),
             "documents": [text(rng, rng.randint(40, 80)) for _ in range(PASSAGES)]}
            for _ in range(count)]


def rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Process:
    """A server process; `url` once it answers `ready_path` with 200."""

    def __init__(self, command: list[str], log_path: Path, url: str | None, ready_path: str,
                 env: dict | None = None):
        self.command = command
        self.log = open(log_path, "w")
        self.log_path = log_path
        self.process = subprocess.Popen(command, cwd=REPO, stdout=self.log,
                                        stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 600
        while url is None and time.time() < deadline:
            match = re.search(r"listening on (http://[0-9.]+:[0-9]+)", log_path.read_text())
            if match:
                url = match.group(1)
            self.check_alive()
            time.sleep(0.1)
        self.url = url
        while time.time() < deadline:
            self.check_alive()
            try:
                if httpx.get(url + ready_path, timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{command[0]} did not get ready; see {log_path}")

    def check_alive(self):
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.command[0]} exited {self.process.returncode}; "
                               f"see {self.log_path}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
        self.log.close()
        return status


async def load(url: str, path: str, body_of, requests: list[dict], clients: int) -> dict:
    """`clients` concurrent clients send `requests` (each taken once) as fast as answers come."""
    latencies, failures, throttled = [], 0, 0
    queue = list(enumerate(requests))
    queue.reverse()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        async def worker():
            nonlocal failures, throttled
            while queue:
                _, request = queue.pop()
                while True:
                    start = time.perf_counter()
                    try:
                        response = await client.post(path, json=body_of(request))
                    except httpx.TransportError as error:  # a reset connection: a failure
                        log(f"{path}: {type(error).__name__}: {error}")
                        failures += 1
                        break
                    if response.status_code == 429:  # deliberate: back off and retry
                        throttled += 1
                        await asyncio.sleep(0.05)
                        continue
                    if response.status_code != 200:
                        failures += 1
                    break
                latencies.append(time.perf_counter() - start)
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - start
    latencies.sort()
    pairs = len(requests) * PASSAGES
    return {"clients": clients, "requests": len(requests), "seconds": seconds,
            "pairs_per_s": pairs / seconds, "p50": statistics.median(latencies),
            "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
            "failed": failures, "throttled": throttled}


def engine_body(request: dict) -> dict:
    return {"query": request["query"], "texts": request["documents"]}


def infinity_body(model: str):
    return lambda request: {"query": request["query"], "documents": request["documents"],
                            "model": model, "return_documents": False}


def batch_job(work: Path, bundle: Path, requests: list[dict], threads: int,
              dtype: str) -> tuple[float, list]:
    """The engine's batch job on the same work: one rerank record per request."""
    inputs = work / "serve_records.jsonl"
    with open(inputs, "w", encoding="utf-8") as file:
        for i, request in enumerate(requests):
            file.write(json.dumps({"id": i, "query": request["query"],
                                   "passages": request["documents"]}) + "\n")
    summary_path = work / "serve_job.summary.json"
    command = [str(ENGINE), "--config", str(REPO / "configs" / "rerank.yaml"), "--summary",
               str(summary_path)]
    for key, value in {"model.path": bundle, "model.device": "cpu", "model.threads": threads,
                       "model.dtype": dtype,
                       "task.kind": "rerank", "task.max_length": 512, "input.path": inputs,
                       "output.path": work / "serve_job.jsonl", "memory.warmup": "true",
                       "logging.progress_interval_s": 0}.items():
        command += ["--set", f"{key}={value}"]
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    summary = json.loads(summary_path.read_text())
    seconds = summary["seconds"] - summary.get("warmup_seconds", 0)
    return summary["pairs"] / seconds, command


def soak(server: Process, requests: list[dict], seconds: float, clients: int) -> list:
    """Resident memory of the server every 10 s while `clients` clients keep it busy."""
    samples, soak_failures = [], []
    stop_at = time.time() + seconds

    async def run():
        async def sampler():
            while time.time() < stop_at:
                samples.append((round(seconds - (stop_at - time.time())), rss_of(server.process.pid)))
                await asyncio.sleep(10)
        async def traffic():
            while time.time() < stop_at:
                row = await load(server.url, "/rerank", engine_body, requests[:clients * 4],
                                 clients)
                soak_failures.append(row["failed"])
        await asyncio.gather(sampler(), traffic())
    asyncio.run(run())
    return samples, sum(soak_failures)


def score_agreement(engine: list, infinity: list) -> str:
    """How Infinity's scores compare with the engine's on the same requests: the largest
    difference after the sigmoid Infinity applies, and how often the best passage agrees."""
    import math
    worst, same_best = 0.0, 0
    for ours, theirs in zip(engine, infinity):
        mine = {r["index"]: 1 / (1 + math.exp(-r["score"])) for r in ours}
        peer = {r["index"]: r["relevance_score"] for r in theirs}
        worst = max(worst, max(abs(mine[i] - peer[i]) for i in mine))
        same_best += max(mine, key=mine.get) == max(peer, key=peer.get)
    return (f"On the first {len(engine)} requests Infinity's scores equal the sigmoid of the "
            f"engine's to {worst:.1e} (best passage the same in {same_best} of {len(engine)}), "
            "so both servers do the same work.")


def plot(levels: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axis = plt.subplots(figsize=(6, 4))
    for name, rows in levels.items():
        clients = [row["clients"] for row in rows]
        axis.plot(clients, [row["p50"] * 1000 for row in rows], marker="o", label=f"{name} p50")
        axis.plot(clients, [row["p99"] * 1000 for row in rows], marker="x", linestyle="--",
                  label=f"{name} p99")
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("concurrent clients")
    axis.set_ylabel("latency per request (ms)")
    axis.set_title(f"rerank, {PASSAGES} passages per request")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests-per-level", type=int, default=96)
    parser.add_argument("--levels", default="1,8,64")
    parser.add_argument("--soak-seconds", type=float, default=0)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-infinity", action="store_true")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                        help="both servers' (and the job's) precision; bf16 writes its own section")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "serve_bench")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "serving.md")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.dtype == "fp32" else f"_{args.dtype}"
    begin, end = (BEGIN.replace("serve_bench", f"serve_bench{suffix}"),
                  END.replace("serve_bench", f"serve_bench{suffix}"))
    plot_name = f"serve_latency{suffix}.png"
    levels = [int(level) for level in args.levels.split(",")]
    bundle = export_sized("cross_encoder", SHAPE, args.work / "minilm-shape")
    checkpoint = checkpoint_of(bundle)
    requests = requests_of(args.requests_per_level, seed=7)

    job_pairs_per_s, job_command = batch_job(args.work, bundle, requests, args.threads,
                                             args.dtype)
    log(f"batch job: {job_pairs_per_s:.1f} pairs/s")

    results: dict[str, list] = {}
    config = args.work / "serve.yaml"
    config.write_text(f"model:\n  path: {bundle}\n  device: cpu\n  threads: {args.threads}\n"
                      f"  dtype: {args.dtype}\n"
                      "task:\n  kind: rerank\n  max_length: 512\n"
                      "logging:\n  level: warn\n")
    engine_command = [str(ENGINE), "serve", "--config", str(config), "--port", "0",
                      "--set", "logging.level=info"]
    engine = Process(engine_command, args.work / "engine_serve.log", None, "/health")
    results["engine"] = []
    for clients in levels:
        row = asyncio.run(load(engine.url, "/rerank", engine_body, requests, clients))
        log(f"engine, {clients} clients: {row}")
        results["engine"].append(row)
    engine_scores = [httpx.post(engine.url + "/rerank", json=engine_body(r), timeout=600).json()
                     for r in requests[:8]]
    samples, soak_failed = (soak(engine, requests, args.soak_seconds, 64)
                            if args.soak_seconds > 0 else ([], 0))
    engine_status = engine.stop()

    infinity_command, agreement = [], ""
    if not args.no_infinity:
        port = 7997
        infinity_command = [str(INFINITY), "v2", "--model-id", str(checkpoint), "--engine",
                            "torch", "--device", "cpu", "--port", str(port), "--batch-size", "32",
                            "--dtype", "float32" if args.dtype == "fp32" else "bfloat16",
                            "--no-bettertransformer"]
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
               "INFINITY_ANONYMOUS_USAGE_STATS": "0", "DO_NOT_TRACK": "1"}
        infinity = Process(infinity_command, args.work / "infinity.log",
                           f"http://127.0.0.1:{port}", "/health", env)
        results["infinity"] = []
        for clients in levels:
            row = asyncio.run(load(infinity.url, "/rerank", infinity_body(str(checkpoint)),
                                   requests, clients))
            log(f"infinity, {clients} clients: {row}")
            results["infinity"].append(row)
        peer_scores = [httpx.post(infinity.url + "/rerank", json=infinity_body(str(checkpoint))(r),
                                  timeout=600).json()["results"] for r in requests[:8]]
        infinity.stop()
        agreement = score_agreement(engine_scores, peer_scores)

    plot(results, REPO / "docs" / plot_name)
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {machine()} by "
             f"`.venv/bin/python bench/{Path(__file__).name} "
             f"{' '.join(sys.argv[1:])}`".rstrip() + "`"[:0] + ": "
             f"{args.requests_per_level} rerank requests per level, each a query and {PASSAGES} "
             "passages of 40-80 words (max_length 512 for both servers), sent by N concurrent clients as fast as "
             f"answers come; the MiniLM-sized cross-encoder in {args.dtype} (both servers) on "
             f"{args.threads} threads; latency from sending a request to its answer.", "",
             "| server | clients | pairs/s | p50 | p99 | failed | 429 retried |",
             "|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        for row in rows:
            lines.append(f"| {name} | {row['clients']} | {row['pairs_per_s']:.1f} | "
                         f"{row['p50'] * 1000:.0f} ms | {row['p99'] * 1000:.0f} ms | "
                         f"{row['failed']} | {row['throttled']} |")
    top = results["engine"][-1]
    lines += ["", f"The engine's batch job on the same {len(requests) * PASSAGES} pairs: "
              f"{job_pairs_per_s:.1f} pairs/s (model time after the warm-up). At "
              f"{top['clients']} clients the server gives "
              f"**{top['pairs_per_s'] / job_pairs_per_s:.2f}x** the batch job's pairs/s"]
    if "infinity" in results:
        peer = results["infinity"][-1]
        lines[-1] += (f" and **{top['pairs_per_s'] / peer['pairs_per_s']:.2f}x** Infinity's "
                      f"({peer['pairs_per_s']:.1f} pairs/s)")
    lines[-1] += "."
    eight = [row for row in results["engine"] if row["clients"] == 8]
    if eight:
        lines.append(f"At 8 clients p99/p50 = {eight[0]['p99'] / eight[0]['p50']:.2f}.")
    lines.append(f"`engine serve` exited {engine_status} on SIGTERM.")
    if agreement:
        lines.append(agreement)
    if samples:
        first = samples[1][1] if len(samples) > 1 else samples[0][1]
        peak = max(rss for _, rss in samples)
        lines += ["", f"Soak: 64 clients for {args.soak_seconds:.0f} s; resident memory every "
                  "10 s (MiB): " + ", ".join(f"{rss / 2**20:.0f}" for _, rss in samples) +
                  f". From the first sample after 10 s to the peak: "
                  f"{100 * (peak - first) / first:+.1f}%; {soak_failed} failed requests."]
    lines += ["", f"![latency against load]({plot_name})", "", "Commands:", "",
              "    " + shown(job_command), "    " + shown(engine_command)]
    if infinity_command:
        lines.append("    " + shown(infinity_command))
    write_doc_section(args.doc, begin, end, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
