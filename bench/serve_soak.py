#!/usr/bin/env python3
"""A short memory soak of `engine serve`: CLIENTS clients keep sending rerank requests (a query
and 8 passages of 40-80 words) for SECONDS; the server's resident memory is printed every 10 s,
with the allocator's reserved bytes and the forward passes at the end. docs/memory.md uses it to
find what grows (e.g. `--env LRU_CACHE_CAPACITY=1024`, `--set model.graph=plain`).

Usage (after tools/setup.sh and the test fixtures):
  .venv/bin/python bench/serve_soak.py [--bundle build/test_fixtures/xlmr_tiny] [--seconds 120]
      [--clients 64] [--env KEY=VALUE]... [--set key=value]...
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import ENGINE, REPO, text
from serve_bench import Process, rss_of


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "build" / "test_fixtures" / "xlmr_tiny")
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    parser.add_argument("--set", action="append", default=[], help="a config override")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="serve-soak-"))
    config = work / "soak.yaml"
    config.write_text(f"model:\n  path: {args.bundle.resolve()}\n  device: cpu\n  threads: 2\n"
                      "task:\n  kind: rerank\n  max_length: 512\nlogging:\n  level: info\n")
    command = [str(ENGINE), "serve", "--config", str(config), "--port", "0"]
    for setting in args.set:
        command += ["--set", setting]
    env = {**os.environ, **dict(item.split("=", 1) for item in args.env)}
    server = Process(command, work / "serve.log", None, "/health", env)
    rng = random.Random(1)
    requests = [{"query": text(rng, rng.randint(4, 12)),
                 "texts": [text(rng, rng.randint(40, 80)) for _ in range(8)]} for _ in range(256)]
    stop_at = time.time() + args.seconds
    samples = []

    async def run():
        async def client(first):
            async with httpx.AsyncClient(timeout=600) as session:
                k = first
                while time.time() < stop_at:
                    await session.post(server.url + "/rerank", json=requests[k % len(requests)])
                    k += args.clients

        async def sampler():
            while time.time() < stop_at:
                samples.append(rss_of(server.process.pid) >> 20)
                await asyncio.sleep(10)
        await asyncio.gather(sampler(), *(client(i) for i in range(args.clients)))
    asyncio.run(run())
    metrics = httpx.get(server.url + "/metrics").text
    totals = {name: re.search(rf"^{name} (\S+)$", metrics, re.M).group(1)
              for name in ("engine_memory_reserved_bytes", "engine_forward_passes_total")}
    server.stop()
    print(f"{' '.join(args.env + args.set) or 'defaults'}: resident MiB every 10 s {samples}; "
          f"reserved {int(float(totals['engine_memory_reserved_bytes'])) >> 20} MiB, "
          f"{int(float(totals['engine_forward_passes_total']))} forward passes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
