"""Fuzzing `engine serve`'s HTTP and JSON front: generated and mutated requests over raw sockets, to
a rerank server and an embedding server. Every answer must be a well-formed HTTP response whose
body is JSON in the error shape of the route's dialect (or a 200's JSON), none may be 5xx, and the
servers must still answer /health afterwards and exit 0 on SIGTERM. A case whose head promises
more bytes than it sends may instead be closed at the server's deadline, unanswered.

    ENGINE_BINARY=build/engine/cli/engine ENGINE_FIXTURE_DIR=build/test_fixtures \\
        .venv/bin/python tests/e2e/serve_fuzz_test.py [--cases 2000] [--seed 1]

ctest runs 2000 cases per server; `--cases 100000` is a longer run. A failing case is printed
with its bytes (repr) and the seed that reproduces the run.
"""
import argparse
import json
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_test import Server, config  # noqa: E402  (the same server process helper)

import tempfile  # noqa: E402

SEEDS = {
    "rerank": [
        ("POST", "/rerank", {"query": "what is a panda?", "texts": ["a bear", "a city"],
                             "return_text": True, "raw_scores": False, "truncate": True}),
        ("POST", "/predict", {"inputs": [["a", "b"], ["c", "d"]]}),
        ("POST", "/v1/rerank", {"model": "m", "query": "q", "documents": ["x", {"text": "y"}],
                                "top_n": 1, "return_documents": True}),
        ("POST", "/v2/rerank", {"model": "m", "query": "q", "documents": ["x", "y", "z"],
                                "top_n": 2}),
        ("POST", "/tokenize", {"inputs": ["hello world"], "add_special_tokens": True}),
        ("GET", "/info", None),
        ("GET", "/health", None),
        ("GET", "/metrics", None),
    ],
    "embed": [
        ("POST", "/embed", {"inputs": ["a", "b"], "normalize": True, "truncate": True}),
        ("POST", "/embed_sparse", {"inputs": "hello"}),
        ("POST", "/v1/embeddings", {"input": ["a", "b"], "model": "m",
                                    "encoding_format": "base64"}),
        ("POST", "/v1/embeddings", {"input": "a", "encoding_format": "float"}),
        ("POST", "/tokenize", {"inputs": "x"}),
        ("GET", "/info", None),
    ],
}

ODD_VALUES = [
    None, True, False, 0, -1, 1, 2 ** 31, 2 ** 63, 2 ** 64, -2 ** 63 - 1, 1e308, -1e308, 0.5,
    "", "x" * 5000, "\u0000", "\ud7ff\ue000", "日本語のテキスト", "🔥" * 50, [], [[]], {}, {"text": 1},
    ["a"] * 600, [None], [1, "a"], {"a": {"b": {"c": []}}},
]
# Raw JSON text no Python value serialises to: overflowing numbers, lone surrogates, deep nesting.
ODD_RAW = [
    b"1e999", b"-1e999", b"123456789012345678901234567890", b"1.0e-400", b'"\\ud800"',
    b'"\\udc00x"', b'"\\u00"', b"NaN", b"Infinity", b"[" * 300 + b"]" * 300,
    b'{"a":' * 200 + b"1" + b"}" * 200, b'"\xff\xfe"', b'"\xc3\x28"', b'"\xed\xa0\x80"',
    b'"\xf4\x90\x80\x80"', b"0x10", b"01", b"+1", b".5", b"1.", b"tru", b"nul",
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW", "post", "G ET"]
PATHS = ["/rerank", "/embed", "/v1/embeddings", "/v2/rerank", "/nowhere", "/", "//rerank",
         "/rerank/", "/rerank?x=1", "/%72erank", "/v1/models", "/" + "a" * 3000, "*", "/ready"]


def dumps(value):
    return json.dumps(value, ensure_ascii=random.random() < 0.5).encode("utf-8", "surrogatepass")


def mutate_json(body):
    """A JSON body with one of its fields changed, removed, duplicated or added."""
    body = dict(body)
    keys = list(body)
    choice = random.randrange(6)
    if choice == 0 and keys:
        body[random.choice(keys)] = random.choice(ODD_VALUES)
    elif choice == 1 and keys:
        del body[random.choice(keys)]
    elif choice == 2:
        body[random.choice(["extra", "model", "top_n", "dimensions", "prompt_name",
                            "instruction", "encoding_format"])] = random.choice(ODD_VALUES)
    elif choice == 3 and keys:
        # Raw text the serialiser cannot write, in place of one value.
        key = random.choice(keys)
        rest = {k: v for k, v in body.items() if k != key}
        text = dumps(rest)
        raw = json.dumps(key).encode() + b":" + random.choice(ODD_RAW)
        return text[:-1] + (b"," if rest else b"") + raw + b"}"
    elif choice == 4 and keys:
        # A key twice.
        key = random.choice(keys)
        text = dumps(body)
        return text[:-1] + b"," + json.dumps(key).encode() + b":" + dumps(body[key]) + b"}"
    elif choice == 5:
        return random.choice([dumps([body]), dumps("text"), dumps(7), b"", b"null", b"{}",
                              b"{" + b" " * 1000 + b"}"])
    return dumps(body)


def mutate_bytes(data):
    """Bytes flipped, cut, inserted or repeated."""
    data = bytearray(data)
    for _ in range(random.randint(1, 4)):
        choice = random.randrange(4)
        at = random.randrange(len(data) + 1)
        if choice == 0 and data:
            data[min(at, len(data) - 1)] = random.randrange(256)
        elif choice == 1:
            del data[at:at + random.randint(1, 8)]
        elif choice == 2:
            data[at:at] = bytes(random.randrange(256) for _ in range(random.randint(1, 4)))
        else:
            data[at:at] = random.choice([b"\xff", b"\xc3", b"\xe2\x82", b"\\u", b"\"", b"{", b"]"])
    return bytes(data)


def chunked(body):
    out = b""
    at = 0
    while at < len(body):
        piece = body[at:at + random.randint(1, 64)]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
        at += len(piece)
    return out + b"0\r\n\r\n"


def request_bytes(method, path, body, framing="length", extra_headers=b""):
    head = f"{method} {path} HTTP/1.1\r\nHost: fuzz\r\n".encode()
    if framing == "length":
        head += b"Content-Length: %d\r\n" % len(body)
    elif framing == "chunked":
        head += b"Transfer-Encoding: chunked\r\n"
        body = chunked(body)
    return head + b"Content-Type: application/json\r\n" + extra_headers + b"\r\n" + body


def make_case(kind):
    """One request's bytes, and whether the server may close it unanswered (it promises more)."""
    method, path, seed = random.choice(SEEDS[kind])
    body = dumps(seed) if seed is not None else b""
    may_stall = False
    choice = random.randrange(10)
    if choice <= 3:
        return request_bytes(method, path, mutate_json(seed) if seed else body), False
    if choice == 4:
        return request_bytes(method, path, mutate_bytes(body)), False
    if choice == 5:
        return request_bytes(random.choice(METHODS), random.choice(PATHS), body), False
    if choice == 6:
        return request_bytes(method, path, mutate_json(seed) if seed else body,
                             framing=random.choice(["chunked", "none"])), False
    if choice == 7:
        # Header trouble: wrong or doubled lengths, odd fields, HTTP/1.0, Expect.
        extra = random.choice([
            b"Content-Length: 5\r\n", b"Content-Length: -1\r\n", b"Content-Length: 99999999999\r\n",
            b"Transfer-Encoding: gzip\r\n", b"Expect: 100-continue\r\n", b"Connection: close\r\n",
            b"X-" + b"a" * 70000 + b": b\r\n", b"Bad Header\r\n", b"\x00\x01: x\r\n",
            b"Authorization: Bearer \xff\r\n",
        ])
        data = request_bytes(method, path, body, extra_headers=extra)
        if random.random() < 0.3:
            data = data.replace(b"HTTP/1.1", b"HTTP/1.0", 1)
        # A second Content-Length larger than the body: the server waits for bytes never sent.
        return data, extra.startswith(b"Content-Length: 9") or b"100-continue" in extra
    if choice == 8:
        # The whole request, bytes mutated anywhere (the head included).
        return mutate_bytes(request_bytes(method, path, body)), True
    # Two requests pipelined on one connection, the second mutated.
    return (request_bytes(method, path, body) +
            request_bytes(method, path, mutate_json(seed) if seed else body)), False


def read_response(sock, timeout):
    """(status, headers, body) of the first final response (after any 100 Continue), or None when
    the server closed the connection or said nothing within `timeout`."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    return None
                data += chunk
            head, _, data = data.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ")[1])
            if status != 100:
                break
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode()] = value.strip().decode()
        length = int(headers.get("content-length", "0"))
        while len(data) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return status, headers, data[:length]
    except (socket.timeout, ConnectionResetError):
        return None


def well_formed(path, status, headers, body):
    """Why the answer is not what a client of the route's dialect can read, or None."""
    if status >= 500:
        return f"status {status}"
    if path.startswith("/metrics") and status == 200:
        return None if headers.get("content-type", "").startswith("text/plain") else "metrics type"
    try:
        value = json.loads(body)
    except ValueError:
        return f"body is not JSON: {body[:200]!r}"
    if status < 400:
        return None
    shapes = {
        "openai": isinstance(value, dict) and isinstance(value.get("error"), dict) and
        isinstance(value["error"].get("message"), str),
        "cohere": isinstance(value, dict) and isinstance(value.get("message"), str),
        "tei": isinstance(value, dict) and isinstance(value.get("error"), str),
    }
    # The dialect by path, as docs/serving.md says; a head too broken to read a path from (400,
    # 431) may come in any of the three.
    path = path.split("?")[0]
    if status in (400, 431):
        ok = any(shapes.values())
    elif path.startswith(("/v1/embeddings", "/v1/models")):
        ok = shapes["openai"]
    elif path.startswith(("/v1/", "/v2/")):
        ok = shapes["cohere"]
    else:
        ok = shapes["tei"]
    return None if ok else f"error body not in the dialect's shape: {value!r}"[:300]


def run_cases(server, kind, cases, failures):
    host, port = server.url.rsplit("//", 1)[1].split(":")
    statuses = {}
    for number in range(cases):
        data, may_stall = make_case(kind)
        first_line = data.split(b"\r\n", 1)[0]
        path = first_line.split(b" ")[1].decode("latin-1") if first_line.count(b" ") >= 2 else ""
        with socket.create_connection((host, int(port))) as sock:
            try:
                sock.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused while sending (a head past the limit); the answer is still read
            answer = read_response(sock, timeout=5)
        if answer is None:
            if not may_stall:
                failures.append((kind, number, data, "no answer"))
            continue
        status, headers, body = answer
        statuses[status] = statuses.get(status, 0) + 1
        problem = well_formed(path, status, headers, body)
        if problem:
            failures.append((kind, number, data, problem))
    return statuses


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=int(os.environ.get("ENGINE_FUZZ_CASES", 2000)))
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    args = parser.parse_args()
    random.seed(args.seed)
    print(f"seed {args.seed}, {args.cases} cases per server", flush=True)
    work = tempfile.mkdtemp(prefix="serve-fuzz-")
    # Short deadlines, so that the cases that promise more than they send cost little.
    deadlines = ("serve:\n  head_timeout_s: 0.5\n  body_timeout_s: 0.5\n"
                 "  max_body_bytes: 65536\n")
    failures = []
    for kind, bundle, extra in [("rerank", "xlmr_tiny", []),
                                ("embed", "m3_tiny", ["--set", "model.options.outputs=dense,sparse"])]:
        server = Server(work, f"fuzz-{kind}", config(bundle, kind) + deadlines, extra)
        try:
            start = time.time()
            statuses = run_cases(server, kind, args.cases, failures)
            alive = server.process.poll() is None
            health = read_health(server.url) if alive else None
            print(f"{kind}: {args.cases} cases in {time.time() - start:.1f} s, statuses "
                  f"{dict(sorted(statuses.items()))}; alive {alive}, /health {health}", flush=True)
            if not alive or health != 200:
                failures.append((kind, -1, b"", f"server down after the cases:\n{server.text()}"))
        finally:
            code = server.stop()
        if code != 0:
            failures.append((kind, -1, b"", f"exit {code} on SIGTERM"))
    kinds = {}
    for _, _, _, problem in failures:
        kinds[problem[:40]] = kinds.get(problem[:40], 0) + 1
    for problem, count in sorted(kinds.items(), key=lambda item: -item[1]):
        print(f"{count} x {problem}")
    for kind, number, data, problem in failures[:20]:
        print(f"FAIL {kind} case {number}: {problem}\n  request: {data[:400]!r}")
    if failures:
        print(f"{len(failures)} failures (seed {args.seed})")
        return 1
    print("no 5xx, every answer well-formed")
    return 0


def read_health(url):
    host, port = url.rsplit("//", 1)[1].split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_response(sock, timeout=5)
    return answer[0] if answer else None


if __name__ == "__main__":
    sys.exit(main())
