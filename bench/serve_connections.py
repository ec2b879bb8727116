#!/usr/bin/env python3
"""Idle and hostile connections against `engine serve`: the latency of a normal rerank request on
an idle server, then again while N connections (10,000 by default) are held open, half of them
having sent part of a request line and then nothing, half having sent nothing at all. The target
(issue 28): the normal request within 2x its idle latency. The server's head and idle deadlines
are raised for the run (serve.head_timeout_s, serve.idle_timeout_s) so that every connection
stays open while it is measured; with the defaults the server closes the half-sent ones after
10 s. Writes the figures, with the command, into docs/serving.md (serve_connections markers).

Usage: .venv/bin/python bench/serve_connections.py [--connections 10000] [--requests 40]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import socket
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import ENGINE, REPO, export_sized, isa_flags, log, machine, write_doc_section
from serve_bench import PASSAGES, SHAPE, Process, requests_of

BEGIN, END = "<!-- serve_connections:begin -->", "<!-- serve_connections:end -->"


def latencies(client: httpx.Client, requests: list[dict]) -> list[float]:
    out = []
    for request in requests:
        start = time.perf_counter()
        response = client.post("/rerank", json={"query": request["query"],
                                                "texts": request["documents"]})
        out.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise RuntimeError(f"/rerank answered {response.status_code}: {response.text}")
    return out


def open_connections(host: str, port: int, count: int) -> list[socket.socket]:
    held = []
    for number in range(count):
        sock = socket.create_connection((host, port))
        if number % 2:
            sock.sendall(b"POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Le")
        held.append(sock)
    return held


def open_count(url: str) -> int:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("engine_open_connections "):
            return int(float(line.split()[1]))
    return -1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--work", type=Path, default=REPO / "build" / "serve_bench")
    parser.add_argument("--doc", type=Path, default=REPO / "docs" / "serving.md")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.connections + 256:
        raise SystemExit(f"the descriptor limit ({hard}) is below {args.connections} connections")
    args.work.mkdir(parents=True, exist_ok=True)
    bundle = export_sized("cross_encoder", SHAPE, args.work / "minilm-shape")
    config = args.work / "connections.yaml"
    config.write_text(f"model:\n  path: {bundle}\n  device: cpu\n  threads: {args.threads}\n"
                      "task:\n  kind: rerank\n  max_length: 512\n"
                      f"serve:\n  max_connections: {args.connections + 100}\n"
                      "  head_timeout_s: 600\n  idle_timeout_s: 600\n"
                      "logging:\n  level: info\n  progress_interval_s: 0\n")
    command = [str(ENGINE), "serve", "--config", str(config), "--port", "0"]
    server = Process(command, args.work / "connections.log", None, "/ready")
    requests = requests_of(args.requests, seed=11)
    host, port = server.url.rsplit("//", 1)[1].split(":")
    with httpx.Client(base_url=server.url, timeout=120) as client:
        latencies(client, requests[:5])  # warm
        idle = latencies(client, requests)
        log(f"idle server: p50 {statistics.median(idle) * 1e3:.1f} ms")
        start = time.perf_counter()
        held = open_connections(host, int(port), args.connections)
        opened_in = time.perf_counter() - start
        time.sleep(1)
        counted = open_count(server.url)
        log(f"{len(held)} connections opened in {opened_in:.1f} s; the server counts {counted}")
        loaded = latencies(client, requests)
        counted_after = open_count(server.url)
        log(f"with them open: p50 {statistics.median(loaded) * 1e3:.1f} ms; "
            f"the server still counts {counted_after}")
    for sock in held:
        sock.close()
    status = server.stop()
    ratio = statistics.median(loaded) / statistics.median(idle)
    p99 = lambda values: sorted(values)[min(len(values) - 1, int(0.99 * len(values)))]
    lines = [
        f"`.venv/bin/python bench/serve_connections.py --connections {args.connections} "
        f"--requests {args.requests}` on {machine()} ({' '.join(isa_flags())}), "
        f"{args.threads} threads, {time.strftime('%Y-%m-%d')}: one client sends rerank requests "
        f"(a query and {PASSAGES} passages of 40-80 words, the MiniLM-shaped cross-encoder of "
        "serve_bench) one after another, on an idle server and then while the other "
        "connections are open (half of them sent `POST /rerank HTTP/1.1 ... Content-Le` and "
        "stopped, half sent nothing; head and idle deadlines raised so that none is closed "
        "while measured).",
        "",
        "| connections held open | server's engine_open_connections | p50 (ms) | p99 (ms) | "
        "p50 / idle p50 |",
        "| --- | --- | --- | --- | --- |",
        f"| 0 | | {statistics.median(idle) * 1e3:.1f} | {p99(idle) * 1e3:.1f} | 1.00 |",
        f"| {args.connections} | {counted} (after: {counted_after}) | "
        f"{statistics.median(loaded) * 1e3:.1f} | {p99(loaded) * 1e3:.1f} | {ratio:.2f} |",
        "",
        f"Exit status on SIGTERM afterwards: {status}.",
    ]
    write_doc_section(args.doc, BEGIN, END, lines)
    print("\n".join(lines))
    return 0 if status == 0 and ratio <= 2 else 1


if __name__ == "__main__":
    sys.exit(main())
