"""`engine serve` as clients call it: the real server on a free port, called with curl, httpx, the
official cohere SDK (/v2/rerank) and the openai SDK (/v1/embeddings). Scores and vectors must equal
the batch job's for the same inputs (1e-6, fp32); bad input, overload and shutdown must answer as
docs/serving.md says.

    ENGINE_BINARY=build/engine/cli/engine ENGINE_FIXTURE_DIR=build/test_fixtures \
        .venv/bin/python tests/e2e/serve_test.py
"""
import base64
import concurrent.futures
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import cohere
import httpx
import openai

ENGINE = os.path.abspath(os.environ.get("ENGINE_BINARY", "build/engine/cli/engine"))
FIXTURES = os.path.abspath(os.environ.get("ENGINE_TEST_FIXTURES") or
                           os.environ.get("ENGINE_FIXTURE_DIR", "build/test_fixtures"))
THREADS = int(os.environ.get("ENGINE_TEST_THREADS") or 2)
TOLERANCE = 1e-6


def read_jsonl(path):
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


class Server:
    """An `engine serve` process on a free port, stopped with SIGTERM."""

    def __init__(self, work, name, config_text, extra=()):
        self.config = os.path.join(work, f"{name}.yaml")
        self.log_path = os.path.join(work, f"{name}.log")
        with open(self.config, "w", encoding="utf-8") as file:
            file.write(config_text)
        self.log = open(self.log_path, "w", encoding="utf-8")
        self.process = subprocess.Popen(
            [ENGINE, "serve", "--config", self.config, "--port", "0", *extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.url = None
        deadline = time.time() + 120
        while time.time() < deadline and self.url is None:
            match = re.search(r"listening on (http://[0-9.]+:[0-9]+)", self.text())
            if match:
                self.url = match.group(1)
            elif self.process.poll() is not None:
                raise RuntimeError(f"engine serve exited {self.process.returncode}:\n{self.text()}")
            time.sleep(0.05)
        self.health_seen = set()
        while time.time() < deadline:
            try:
                status = httpx.get(self.url + "/health").status_code
            except httpx.TransportError:
                status = None
            self.health_seen.add(status)
            if status == 200:
                return
            time.sleep(0.02)
        raise RuntimeError(f"engine serve did not get ready:\n{self.text()}")

    def text(self):
        with open(self.log_path, encoding="utf-8") as file:
            return file.read()

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=60)
        self.log.close()
        return status

    def metric(self, name):
        text = httpx.get(self.url + "/metrics").text
        values = [float(line.split()[-1]) for line in text.splitlines()
                  if line.startswith(name + " ") or line.startswith(name + "{")]
        return sum(values)


def config(bundle, kind, extra=""):
    return (f"model:\n  path: {os.path.join(FIXTURES, bundle)}\n  device: cpu\n"
            f"  threads: {THREADS}\n"
            f"task:\n  kind: {kind}\n  max_length: 256\n" + extra +
            "logging:\n  level: info\n  progress_interval_s: 0\n")


def run_job(work, name, bundle, kind, records, extra=""):
    """The batch job's output lines for `records`."""
    input_path = os.path.join(work, f"{name}.in.jsonl")
    output_path = os.path.join(work, f"{name}.out.jsonl")
    with open(input_path, "w", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record) + "\n")
    config_path = os.path.join(work, f"{name}.job.yaml")
    with open(config_path, "w", encoding="utf-8") as file:
        file.write(config(bundle, kind, extra) +
                   f"input:\n  path: {input_path}\noutput:\n  path: {output_path}\n")
    subprocess.run([ENGINE, "--config", config_path], check=True, capture_output=True)
    return read_jsonl(output_path)


def rerank_job_scores(work, name, bundle, records):
    """The batch job's rerank scores of `records`, one {passage index: score} per record."""
    return [{r["index"]: r["score"] for r in output["results"]}
            for output in run_job(work, name, bundle, "rerank", records)]


class RerankServingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="serve-test-")
        cls.records = read_jsonl(os.path.join(FIXTURES, "bce_records.jsonl"))
        # The job's scores, by record and passage index.
        cls.expected = rerank_job_scores(cls.work, "rerank", "xlmr_tiny", cls.records)
        cls.server = Server(cls.work, "rerank", config("xlmr_tiny", "rerank"))
        cls.url = cls.server.url

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0, cls.server.text()

    def assert_scores(self, got, expected):
        self.assertEqual(sorted(got), sorted(expected))
        for index, score in got.items():
            self.assertAlmostEqual(score, expected[index], delta=TOLERANCE, msg=f"passage {index}")

    def test_tei_rerank_with_httpx_equals_the_batch_job(self):
        with httpx.Client(base_url=self.url) as client:
            for record, expected in zip(self.records, self.expected):
                response = client.post("/rerank", json={"query": record["query"],
                                                        "texts": record["passages"],
                                                        "return_text": True})
                self.assertEqual(response.status_code, 200, response.text)
                results = response.json()
                self.assert_scores({r["index"]: r["score"] for r in results}, expected)
                scores = [r["score"] for r in results]
                self.assertEqual(scores, sorted(scores, reverse=True), "best first")
                self.assertEqual(results[0]["text"], record["passages"][results[0]["index"]])

    def test_tei_rerank_with_curl(self):
        record = self.records[0]
        body = json.dumps({"query": record["query"], "texts": record["passages"]})
        result = subprocess.run(["curl", "-s", "-f", "-X", "POST", "-H",
                                 "Content-Type: application/json", "--data-binary", body,
                                 self.url + "/rerank"], capture_output=True, text=True, check=True)
        self.assert_scores({r["index"]: r["score"] for r in json.loads(result.stdout)},
                           self.expected[0])

    def test_cohere_sdk_v2_rerank(self):
        client = cohere.ClientV2(api_key="unused", base_url=self.url)
        for record, expected in zip(self.records[:4], self.expected[:4]):
            response = client.rerank(model="xlmr-tiny", query=record["query"],
                                     documents=record["passages"], top_n=3)
            self.assertEqual(len(response.results), min(3, len(record["passages"])))
            best = sorted(expected.values(), reverse=True)[:3]
            for result, score in zip(response.results, best):
                self.assertAlmostEqual(result.relevance_score, expected[result.index],
                                       delta=TOLERANCE)
                self.assertAlmostEqual(result.relevance_score, score, delta=TOLERANCE)

    def test_v1_rerank_returns_documents_as_jina_and_cohere_v1_do(self):
        record = self.records[1]
        response = httpx.post(self.url + "/v1/rerank", json={
            "model": "m", "query": record["query"],
            "documents": [{"text": p} for p in record["passages"]], "return_documents": True})
        self.assertEqual(response.status_code, 200, response.text)
        body = response.json()
        self.assertEqual(body["meta"]["api_version"]["version"], "1")
        for result in body["results"]:
            self.assertEqual(result["document"]["text"], record["passages"][result["index"]])
            self.assertAlmostEqual(result["relevance_score"], self.expected[1][result["index"]],
                                   delta=TOLERANCE)

    def test_predict_scores_pairs_as_the_job_does(self):
        record = self.records[2]
        pairs = [[record["query"], passage] for passage in record["passages"]]
        response = httpx.post(self.url + "/predict", json={"inputs": pairs})
        self.assertEqual(response.status_code, 200, response.text)
        for index, labels in enumerate(response.json()):
            self.assertAlmostEqual(labels[0]["score"], self.expected[2][index], delta=TOLERANCE)
        single = httpx.post(self.url + "/predict", json={"inputs": pairs[0]}).json()
        self.assertAlmostEqual(single[0]["score"], self.expected[2][0], delta=TOLERANCE)

    def test_many_clients_at_once_each_get_their_own_answer(self):
        def call(number):
            record = self.records[number % len(self.records)]
            response = httpx.post(self.url + "/rerank", json={"query": record["query"],
                                                              "texts": record["passages"]},
                                  timeout=120)
            return number, response
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            answers = list(pool.map(call, range(96)))
        for number, response in answers:
            self.assertEqual(response.status_code, 200, response.text)
            self.assert_scores({r["index"]: r["score"] for r in response.json()},
                               self.expected[number % len(self.records)])
        self.assertGreater(self.server.metric("engine_batch_size_count"), 0)

    def test_a_stalled_client_does_not_hold_up_the_others(self):
        import socket
        host, port = self.url.rsplit("//", 1)[1].split(":")
        stalled = socket.create_connection((host, int(port)))
        # Headers promising a body that never comes, and a connection that is never read.
        stalled.sendall(b"POST /rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100000\r\n\r\n{\"query\": ")
        try:
            record = self.records[3]
            start = time.time()
            for _ in range(3):
                response = httpx.post(self.url + "/rerank", json={"query": record["query"],
                                                                  "texts": record["passages"]})
                self.assertEqual(response.status_code, 200)
            self.assertLess(time.time() - start, 20)
        finally:
            stalled.close()

    def test_bad_input_gets_422_naming_the_field(self):
        cases = [
            (b"{not json", "the body is not JSON"),
            (b"[1, 2]", "the body must be a JSON object, not a list"),
            (json.dumps({"texts": ["a"]}).encode(), "'query' is missing"),
            (json.dumps({"query": 3, "texts": ["a"]}).encode(),
             "'query' must be a string, not a number"),
            (json.dumps({"query": "q", "texts": []}).encode(), "'texts' is empty"),
            (json.dumps({"query": "q", "texts": ["a", 7]}).encode(),
             "'texts[1]' must be a string, not a number"),
            (json.dumps({"query": "q", "texts": "a"}).encode(), "'texts' must be a list"),
            (json.dumps({"query": "q", "texts": ["a"] * 513}).encode(),
             "'texts' has 513 items; this server takes at most 512"),
            (json.dumps({"query": "q", "texts": ["a"], "return_text": "yes"}).encode(),
             "'return_text' must be true or false"),
        ]
        for body, message in cases:
            response = httpx.post(self.url + "/rerank", content=body)
            self.assertEqual(response.status_code, 422, body)
            self.assertIn(message, response.json()["error"], body)
            self.assertEqual(response.json()["error_type"], "Validation")
        cohere_error = httpx.post(self.url + "/v2/rerank", json={"query": "q", "documents": [],
                                                                 "model": "m"})
        self.assertEqual(cohere_error.status_code, 422)
        self.assertIn("'documents' is empty", cohere_error.json()["message"])
        top_n = httpx.post(self.url + "/v2/rerank", json={"query": "q", "documents": ["a"],
                                                          "top_n": 0})
        self.assertIn("'top_n'", top_n.json()["message"])

    def test_oversized_body_unknown_route_and_wrong_task(self):
        big = json.dumps({"query": "q", "texts": ["x" * 1000] * 20000})
        response = httpx.post(self.url + "/rerank", content=big)
        self.assertEqual(response.status_code, 413)
        self.assertIn("serve.max_body_bytes", response.json()["error"])
        self.assertEqual(httpx.get(self.url + "/nowhere").status_code, 404)
        wrong_method = httpx.get(self.url + "/rerank")
        self.assertEqual(wrong_method.status_code, 405)
        self.assertEqual(wrong_method.headers["allow"], "POST")
        self.assertEqual(httpx.get(self.url + "/ready").json(), {"status": "ready"})
        embed = httpx.post(self.url + "/embed", json={"inputs": "x"})
        self.assertEqual(embed.status_code, 404)
        self.assertIn("task.kind rerank", embed.json()["error"])

    def test_info_tokenize_and_metrics(self):
        info = httpx.get(self.url + "/info").json()
        self.assertEqual(info["family"], "cross_encoder")
        self.assertEqual(info["max_input_length"], 256)
        tokens = httpx.post(self.url + "/tokenize", json={"inputs": "hello world"}).json()[0]
        self.assertTrue(tokens[0]["special"] and tokens[-1]["special"])
        self.assertFalse(any(t["special"] for t in tokens[1:-1]))
        engine_ids = subprocess.run([ENGINE, "tokenize", "--model",
                                     os.path.join(FIXTURES, "xlmr_tiny"), "hello world"],
                                    capture_output=True, text=True, check=True)
        self.assertEqual([t["id"] for t in tokens], json.loads(engine_ids.stdout)["ids"])
        record = self.records[0]
        httpx.post(self.url + "/rerank", json={"query": record["query"], "texts": record["passages"]})
        metrics = httpx.get(self.url + "/metrics").text
        for name in ("engine_requests_total{route=\"/rerank\",status=\"200\"}",
                     "engine_queue_sequences", "engine_batch_size_bucket",
                     "engine_batch_tokens_bucket", "engine_queue_duration_seconds_bucket",
                     "engine_compute_duration_seconds_bucket",
                     "engine_request_duration_seconds_bucket", "engine_memory_peak_allocated_bytes",
                     "engine_cache_clears_total", "engine_oom_splits_total", "engine_ready 1"):
            self.assertIn(name, metrics)


class EmbeddingServingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="serve-embed-test-")
        records = read_jsonl(os.path.join(FIXTURES, "bce_records.jsonl"))
        cls.texts = [p for record in records for p in record["passages"][:2]]
        outputs = cls.job_with_options(cls.work, cls.texts)
        cls.dense = [o["dense"] for o in outputs]
        cls.sparse = [o["sparse"] for o in outputs]
        cls.server = Server(cls.work, "embed", config("m3_tiny", "embed"),
                            ["--set", "model.options.outputs=dense,sparse"])
        cls.url = cls.server.url

    @staticmethod
    def job_with_options(work, texts):
        input_path = os.path.join(work, "embed2.in.jsonl")
        output_path = os.path.join(work, "embed2.out.jsonl")
        with open(input_path, "w", encoding="utf-8") as file:
            for i, text in enumerate(texts):
                file.write(json.dumps({"id": i, "text": text}) + "\n")
        config_path = os.path.join(work, "embed2.yaml")
        with open(config_path, "w", encoding="utf-8") as file:
            file.write(config("m3_tiny", "embed") +
                       f"input:\n  path: {input_path}\noutput:\n  path: {output_path}\n")
        subprocess.run([ENGINE, "--config", config_path, "--set",
                        "model.options.outputs=dense,sparse"], check=True, capture_output=True)
        return read_jsonl(output_path)

    @classmethod
    def tearDownClass(cls):
        assert cls.server.stop() == 0

    def assert_vector(self, got, expected):
        self.assertEqual(len(got), len(expected))
        for a, b in zip(got, expected):
            self.assertAlmostEqual(a, b, delta=TOLERANCE)

    def test_openai_sdk_embeddings_equal_the_batch_job(self):
        client = openai.OpenAI(api_key="unused", base_url=self.url + "/v1")
        response = client.embeddings.create(model="m3-tiny", input=self.texts[:8])
        self.assertEqual(len(response.data), 8)
        for item in response.data:
            self.assert_vector(item.embedding, self.dense[item.index])
        self.assertGreater(response.usage.prompt_tokens, 0)
        floats = client.embeddings.create(model="m3-tiny", input=self.texts[0],
                                          encoding_format="float")
        self.assert_vector(floats.data[0].embedding, self.dense[0])

    def test_base64_is_little_endian_float32(self):
        response = httpx.post(self.url + "/v1/embeddings", json={
            "input": [self.texts[3]], "encoding_format": "base64", "model": "m"}).json()
        raw = base64.b64decode(response["data"][0]["embedding"])
        self.assert_vector(list(struct.unpack(f"<{len(raw) // 4}f", raw)), self.dense[3])

    def test_tei_embed_and_embed_sparse(self):
        dense = httpx.post(self.url + "/embed", json={"inputs": self.texts[:5],
                                                      "normalize": False}).json()
        for got, expected in zip(dense, self.dense):
            self.assert_vector(got, expected)
        sparse = httpx.post(self.url + "/embed_sparse", json={"inputs": self.texts[:5]}).json()
        for got, expected in zip(sparse, self.sparse):
            self.assertEqual({str(item["index"]) for item in got}, set(expected))
            for item in got:
                self.assertAlmostEqual(item["value"], expected[str(item["index"])],
                                       delta=TOLERANCE)

    def test_what_the_server_answers_comes_from_the_result_not_from_the_output_line(self):
        # Sparse weights keyed by token text in the job's lines still answer /embed_sparse by
        # token id, and a representation the model does not compute is a 400 naming the option.
        server = Server(self.work, "sparse-only", config("m3_tiny", "embed"),
                        ["--set", "model.options.outputs=sparse",
                         "--set", "model.options.sparse_tokens=true"])
        try:
            sparse = httpx.post(server.url + "/embed_sparse",
                                json={"inputs": self.texts[:3]}).json()
            for got, expected in zip(sparse, self.sparse):
                self.assertEqual({str(item["index"]) for item in got}, set(expected))
            dense = httpx.post(server.url + "/embed", json={"inputs": self.texts[:1]})
            self.assertEqual(dense.status_code, 400)
            self.assertIn("no dense output", dense.json()["error"])
            self.assertIn("model.options.outputs", dense.json()["error"])
        finally:
            self.assertEqual(server.stop(), 0)

    def test_openai_errors_come_in_openai_shape(self):
        response = httpx.post(self.url + "/v1/embeddings", json={"input": [[1, 2, 3]]})
        self.assertEqual(response.status_code, 422)
        self.assertEqual(response.json()["error"]["param"], "input")
        client = openai.OpenAI(api_key="unused", base_url=self.url + "/v1", max_retries=0)
        with self.assertRaises(openai.UnprocessableEntityError):
            client.embeddings.create(model="m", input=[])
        rerank = httpx.post(self.url + "/rerank", json={"query": "q", "texts": ["a"]})
        self.assertEqual(rerank.status_code, 404)


class PublishedEmbedderServingTest(unittest.TestCase):
    def test_a_qwen3_embedder_directory_serves_what_the_batch_job_writes(self):
        # Exported from its sentence-transformers directory with no --family
        # (tests/e2e/embedder_parity_test.cc holds the job to sentence-transformers).
        work = tempfile.mkdtemp(prefix="serve-embedder-")
        texts = ["the river city market", "北京 上海", "Straße groß schön", "x"]
        expected = [o["dense"] for o in run_job(work, "embedder", "st_qwen3_tiny", "embed",
                                                 [{"text": t} for t in texts])]
        server = Server(work, "embedder", config("st_qwen3_tiny", "embed"))
        try:
            client = openai.OpenAI(api_key="unused", base_url=server.url + "/v1", max_retries=0)
            response = client.embeddings.create(model="qwen3-tiny", input=texts)
            for item, want in zip(response.data, expected):
                self.assertEqual(len(item.embedding), len(want))
                for got, value in zip(item.embedding, want):
                    self.assertAlmostEqual(got, value, delta=TOLERANCE)
            # TEI's prompt_name picks one of the directory's prompts, as the job's records do.
            prompted = [o["dense"] for o in run_job(
                work, "embedder-query", "st_qwen3_tiny", "embed",
                [{"text": t, "prompt_name": "query"} for t in texts])]
            response = httpx.post(server.url + "/embed", json={
                "inputs": texts, "prompt_name": "query", "normalize": False})
            self.assertEqual(response.status_code, 200, response.text)
            for got, want in zip(response.json(), prompted):
                for a, b in zip(got, want):
                    self.assertAlmostEqual(a, b, delta=TOLERANCE)
            self.assertNotEqual(prompted[0], expected[0])
            unknown = httpx.post(server.url + "/embed", json={"inputs": "x",
                                                              "prompt_name": "passage"})
            self.assertEqual(unknown.status_code, 422)
            self.assertIn("not a prompt of this model", unknown.json()["error"])
        finally:
            self.assertEqual(server.stop(), 0)


class PublishedCrossEncoderServingTest(unittest.TestCase):
    def test_a_modernbert_cross_encoder_directory_serves_what_the_batch_job_writes(self):
        # Exported from its CrossEncoder directory with no --family; the job's scores equal
        # CrossEncoder.predict (tests/e2e/published_cross_encoder_test.cc).
        work = tempfile.mkdtemp(prefix="serve-cross-encoder-")
        records = read_jsonl(os.path.join(FIXTURES, "bce_records.jsonl"))[:4]
        expected = rerank_job_scores(work, "ce", "ce_modernbert_tiny", records)
        server = Server(work, "ce", config("ce_modernbert_tiny", "rerank"))
        try:
            client = cohere.ClientV2(api_key="unused", base_url=server.url)
            for record, want in zip(records, expected):
                response = client.rerank(model="ce", query=record["query"],
                                         documents=record["passages"])
                self.assertEqual(len(response.results), len(want))
                for result in response.results:
                    self.assertAlmostEqual(result.relevance_score, want[result.index],
                                           delta=TOLERANCE)
        finally:
            self.assertEqual(server.stop(), 0)


class LlmRerankerServingTest(unittest.TestCase):
    def test_llm_reranker_scores_equal_the_batch_job(self):
        work = tempfile.mkdtemp(prefix="serve-llm-")
        records = read_jsonl(os.path.join(FIXTURES, "bce_records.jsonl"))[:4]
        expected = rerank_job_scores(work, "llm", "llm_tiny", records)
        server = Server(work, "llm", config("llm_tiny", "rerank"))
        try:
            for record, want in zip(records, expected):
                response = httpx.post(server.url + "/v1/rerank", json={
                    "query": record["query"], "documents": record["passages"]})
                self.assertEqual(response.status_code, 200, response.text)
                for result in response.json()["results"]:
                    self.assertAlmostEqual(result["relevance_score"], want[result["index"]],
                                           delta=TOLERANCE)
        finally:
            self.assertEqual(server.stop(), 0)


class TemplatedLlmRerankerServingTest(unittest.TestCase):
    """Qwen3-Reranker's and bge-reranker-v2-minicpm-layerwise's layouts (templates in their
    bundles) through TEI's /rerank, with a request's own instruction equal to the batch job's
    record instruction, and refused by a cross-encoder."""

    def test_a_request_instruction_scores_as_a_record_instruction(self):
        work = tempfile.mkdtemp(prefix="serve-decoders-")
        records = [dict(r, instruction="Find the passage that answers the question")
                   for r in read_jsonl(os.path.join(FIXTURES, "bce_records.jsonl"))[:3]]
        for name, bundle in (("qwen3", "qwen3_reranker_tiny"),
                             ("layerwise", "minicpm_layerwise_tiny")):
            with self.subTest(bundle=bundle):
                expected = rerank_job_scores(work, name, bundle, records)
                plain = rerank_job_scores(work, name + "-plain", bundle,
                                          [{"query": r["query"], "passages": r["passages"]}
                                           for r in records])
                self.assertNotEqual(expected, plain, "the instruction changed no score")
                server = Server(work, name, config(bundle, "rerank"))
                try:
                    for record, want in zip(records, expected):
                        response = httpx.post(server.url + "/rerank", json={
                            "query": record["query"], "texts": record["passages"],
                            "instruction": record["instruction"]})
                        self.assertEqual(response.status_code, 200, response.text)
                        for result in response.json():
                            self.assertAlmostEqual(result["score"], want[result["index"]],
                                                   delta=TOLERANCE)
                finally:
                    self.assertEqual(server.stop(), 0)
        server = Server(work, "ce-instruction", config("xlmr_tiny", "rerank"))
        try:
            response = httpx.post(server.url + "/rerank", json={
                "query": "q", "texts": ["p"], "instruction": "x"})
            self.assertEqual(response.status_code, 422, response.text)
            self.assertIn("no place for one", response.json()["error"])
        finally:
            self.assertEqual(server.stop(), 0)


class OverloadAndShutdownTest(unittest.TestCase):
    def test_a_full_queue_answers_429_and_sigterm_finishes_what_is_queued(self):
        work = tempfile.mkdtemp(prefix="serve-overload-")
        # The model waits up to 3 s for a request's companions, and holds at most 4 sequences.
        server = Server(work, "overload", config("xlmr_tiny", "rerank") +
                        "serve:\n  max_wait_ms: 3000\n  max_queue_sequences: 4\n")
        body = {"query": "q", "texts": ["one", "two", "three"]}
        kept = httpx.Client(base_url=server.url)  # a connection opened before the signal
        self.assertEqual(kept.get("/ready").status_code, 200)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            first = pool.submit(httpx.post, server.url + "/rerank", json=body, timeout=60)
            time.sleep(0.5)
            second = httpx.post(server.url + "/rerank", json=body)
            self.assertEqual(second.status_code, 429, second.text)
            self.assertIn("serve.max_queue_sequences", second.json()["error"])
            # SIGTERM while the first is queued: it is still answered, then the server exits 0.
            # Meanwhile a request on an open connection gets 503 (and the connection is closed),
            # /ready turns 503, and new connections are refused.
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            late = kept.post("/rerank", json=body)
            self.assertEqual(late.status_code, 503, late.text)
            self.assertIn("shutting down", late.json()["error"])
            self.assertEqual(late.headers.get("connection"), "close")
            with self.assertRaises(httpx.TransportError):
                httpx.get(server.url + "/ready")
            self.assertEqual(first.result().status_code, 200)
        kept.close()
        self.assertEqual(server.stop(), 0)
        self.assertIn("stopped", server.text())

    def test_out_of_memory_splits_and_every_request_is_answered(self):
        work = tempfile.mkdtemp(prefix="serve-oom-")
        records = read_jsonl(os.path.join(FIXTURES, "bce_records.jsonl"))
        free = Server(work, "free", config("xlmr_tiny", "rerank"))
        allocated = free.metric("engine_memory_allocated_bytes")
        peak = free.metric("engine_memory_peak_allocated_bytes")
        expected = [httpx.post(free.url + "/rerank", json={"query": r["query"],
                                                           "texts": r["passages"]}).json()
                    for r in records]
        self.assertEqual(free.stop(), 0)
        limit = int(allocated + (peak - allocated) / 4)
        tight = Server(work, "tight", config("xlmr_tiny", "rerank") +
                       f"memory:\n  limit: {limit}\n")
        for record, want in zip(records, expected):
            got = httpx.post(tight.url + "/rerank", json={"query": record["query"],
                                                          "texts": record["passages"]})
            self.assertEqual(got.status_code, 200, got.text)
            want_scores = {r["index"]: r["score"] for r in want}
            for result in got.json():
                self.assertAlmostEqual(result["score"], want_scores[result["index"]], delta=1e-5)
        self.assertGreater(tight.metric("engine_oom_splits_total"), 0, tight.text())
        self.assertEqual(tight.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
