"""The systems bench/peer_bench.py compares the engine with, each run by a worker: a fresh
`peer_bench.py --worker SYSTEM` process that loads one system, scores the spec's items and writes
a result file. A worker imports only what its system needs, so its peak RSS (VmHWM) is that
system's.

A spec (JSON, written by the driver) holds the part, the HF checkpoint, a folder for converted
models, the items sorted by length (longest first: (query, passage) pairs, or texts to embed),
the batch size, max_length and the thread count. Every system scores the items in that order, in
batches of that size padded to the longest in the batch, after one warm-up batch; the timed
region runs from the texts to the scores, tokenization included. The result holds the scores (or
dense vectors) in spec order, the timed seconds, the peak RSS and, where the worker tokenized the
items itself, the real tokens it saw.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

# ------------------------------------------------------------------------------------------------
# Common to every worker
# ------------------------------------------------------------------------------------------------


class Skip(Exception):
    """A system that cannot run this part or architecture; the message says why."""


def peak_rss() -> int:
    """The process's resident high-water mark (VmHWM), as the engine reports peak_resident."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def timed_batches(spec: dict, score_batch) -> dict:
    """Warm up on the first batch, then score every batch; score_batch returns (scores, tokens)."""
    batches = chunks(spec["items"], spec["batch_size"])
    start = time.perf_counter()
    score_batch(batches[0])
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    scores, tokens = [], 0
    for batch in batches:
        batch_scores, batch_tokens = score_batch(batch)
        scores += [float(s) for s in batch_scores]
        tokens += batch_tokens
    return {"scores": scores, "seconds": time.perf_counter() - start, "warmup_seconds": warmup,
            "tokens": tokens}


def timed_library(spec: dict, run_all) -> tuple:
    """For a library that batches by itself (given the batch size): warm up on one batch, then
    run_all(items). Returns its output, the timed seconds and the warm-up's."""
    items = spec["items"]
    start = time.perf_counter()
    run_all(items[:spec["batch_size"]])
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    output = run_all(items)
    return output, time.perf_counter() - start, warmup


class ForwardClock:
    """Times every forward of a torch module: FlagEmbedding's compute_score and encode first run
    their longest batch once to probe the batch size (FlagEmbedding 1.4.2), and the note says
    what that extra forward took of the timed call."""

    def __init__(self, module):
        self.seconds: list[float] = []
        module.register_forward_pre_hook(lambda *_: self.seconds.append(-time.perf_counter()))
        module.register_forward_hook(lambda *_: self.seconds.__setitem__(
            -1, self.seconds[-1] + time.perf_counter()))

    def probe_note(self, batches: int, timed: float) -> str:
        calls = self.seconds[-(batches + 1):]
        if len(calls) != batches + 1:
            return ""
        return (f"its batch-size probe (one extra forward of the longest batch) took "
                f"{calls[0]:.2f} s of the {timed:.2f} s timed")


def library_scores(spec: dict, score_all, clock: ForwardClock | None = None) -> dict:
    import numpy as np
    scores, seconds, warmup = timed_library(spec, score_all)
    batches = len(chunks(spec["items"], spec["batch_size"]))
    return {"scores": [float(s) for s in np.atleast_1d(scores)], "seconds": seconds,
            "warmup_seconds": warmup, "tokens": None,
            "detail": clock.probe_note(batches, seconds) if clock else ""}


def pair_tokenizer(spec: dict, pad: bool = True):
    """The checkpoint's HF fast tokenizer (tokenizer.json through the tokenizers library, which
    AutoTokenizer wraps), truncating pairs longest-first to max_length as tokenizer(q, p,
    truncation=True) does. Loaded directly, so that workers without torch stay without it."""
    from tokenizers import Tokenizer
    checkpoint = Path(spec["checkpoint"])
    tokenizer = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    tokenizer.enable_truncation(spec["max_length"])
    if pad:
        pad_id = json.loads((checkpoint / "config.json").read_text())["pad_token_id"]
        tokenizer.enable_padding(pad_id=pad_id, pad_token=tokenizer.id_to_token(pad_id))
    return tokenizer


def encode_padded(tokenizer, batch: list) -> tuple:
    import numpy as np
    encodings = tokenizer.encode_batch([tuple(pair) for pair in batch])
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask, int(mask.sum())


def use_torch_threads(spec: dict):
    import torch
    torch.set_num_threads(spec["threads"])
    torch.set_num_interop_threads(1)
    return torch


# ------------------------------------------------------------------------------------------------
# PyTorch libraries: FlagEmbedding and sentence-transformers
# ------------------------------------------------------------------------------------------------


def flag_pair_scores(spec: dict, reranker_class: str) -> dict:
    """FlagEmbedding's FlagReranker or FlagLLMReranker at its defaults (fp32 on the CPU)."""
    use_torch_threads(spec)
    import FlagEmbedding
    model = getattr(FlagEmbedding, reranker_class)(
        spec["checkpoint"], use_fp16=False, devices="cpu", batch_size=spec["batch_size"],
        max_length=spec["max_length"])
    clock = ForwardClock(model.model)
    return library_scores(spec, lambda items: model.compute_score(
        [tuple(pair) for pair in items], batch_size=spec["batch_size"],
        max_length=spec["max_length"]), clock)


def run_flag_reranker(spec: dict) -> dict:
    return flag_pair_scores(spec, "FlagReranker")


def run_flag_m3(spec: dict) -> dict:
    use_torch_threads(spec)
    from FlagEmbedding import BGEM3FlagModel
    model = BGEM3FlagModel(spec["checkpoint"], use_fp16=False, devices="cpu",
                           batch_size=spec["batch_size"])
    clock = ForwardClock(model.model)

    def dense(texts):
        return model.encode(texts, batch_size=spec["batch_size"], max_length=spec["max_length"],
                            return_dense=True, return_sparse=False,
                            return_colbert_vecs=False)["dense_vecs"]

    vectors, seconds, warmup = timed_library(spec, dense)
    batches = len(chunks(spec["items"], spec["batch_size"]))
    return {"vectors": vectors.tolist(), "seconds": seconds, "warmup_seconds": warmup,
            "tokens": None, "detail": clock.probe_note(batches, seconds)}


def run_flag_llm_reranker(spec: dict) -> dict:
    return flag_pair_scores(spec, "FlagLLMReranker")


def run_cross_encoder(spec: dict, bf16: bool) -> dict:
    torch = use_torch_threads(spec)
    from sentence_transformers import CrossEncoder
    kwargs = {"dtype": torch.bfloat16} if bf16 else {}
    model = CrossEncoder(spec["checkpoint"], device="cpu", max_length=spec["max_length"],
                         model_kwargs=kwargs, activation_fn=torch.nn.Identity())
    if bf16 and next(model.model.parameters()).dtype != torch.bfloat16:
        model.model.to(torch.bfloat16)
    return library_scores(spec, lambda items: model.predict(
        [tuple(pair) for pair in items], batch_size=spec["batch_size"],
        show_progress_bar=False, convert_to_numpy=True))


# ------------------------------------------------------------------------------------------------
# ONNX Runtime and OpenVINO on an ONNX export of the HF model
# ------------------------------------------------------------------------------------------------


def onnx_file(spec: dict, variant: str) -> Path:
    """The checkpoint as ONNX: plain (`fp32`), fused by onnxruntime.transformers.optimizer
    (`opt`), or that dynamically quantized to int8 (`int8`). Made on first use."""
    folder = Path(spec["artifacts"])
    path = folder / f"model-{variant}.onnx"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    if variant == "fp32":
        export_onnx(spec, path)
    elif variant == "opt":
        from onnxruntime.transformers.optimizer import optimize_model
        arch = spec["arch"]
        model = optimize_model(str(onnx_file(spec, "fp32")), model_type="bert",
                               num_heads=arch["heads"], hidden_size=arch["hidden"])
        fused = {k: v for k, v in model.get_fused_operator_statistics().items() if v}
        print(f"onnxruntime optimizer fused {fused}", file=sys.stderr)
        model.save_model_to_file(str(path))
    elif variant == "int8":
        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic
        # The optimizer's fused ops have no ONNX shape inference: say their outputs are float.
        quantize_dynamic(str(onnx_file(spec, "opt")), str(path), weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return path


def export_onnx(spec: dict, path: Path) -> None:
    """torch.onnx.export, the TorchScript-based exporter (dynamo=False, which torch 2.11 still
    has; it needs neither onnxscript nor a network), of the eager-attention model, so that the
    optimizer recognises the attention pattern. Batch and sequence axes are dynamic."""
    torch = use_torch_threads(spec)
    from transformers import AutoModelForSequenceClassification

    class Logits(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask):
            return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    model = AutoModelForSequenceClassification.from_pretrained(
        spec["checkpoint"], attn_implementation="eager", dtype=torch.float32).eval()
    ids = torch.randint(3, 100, (2, 16))
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    dynamic = {"input_ids": {0: "batch", 1: "sequence"},
               "attention_mask": {0: "batch", 1: "sequence"}, "logits": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(Logits(model).eval(), (ids, mask), str(path), dynamo=False,
                          input_names=["input_ids", "attention_mask"], output_names=["logits"],
                          dynamic_axes=dynamic, opset_version=17)


def run_onnxruntime(spec: dict, variant: str) -> dict:
    if spec["part"] != "cross_encoder":
        raise Skip("ONNX export is made for the cross-encoder only")
    path = onnx_file(spec, variant)
    if spec.get("prepare_only"):
        return {}
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = spec["threads"]
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    tokenizer = pair_tokenizer(spec)

    def score(batch):
        ids, mask, tokens = encode_padded(tokenizer, batch)
        logits = session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return logits[:, 0], tokens

    return timed_batches(spec, score)


def openvino_model(spec: dict, variant: str) -> Path:
    """OpenVINO IR of the fp32 ONNX export (weights kept fp32), or with weights compressed to
    int8 by nncf.compress_weights (data-free, per-channel INT8_ASYM)."""
    path = Path(spec["artifacts"]) / f"openvino-{variant}.xml"
    if path.is_file():
        return path
    import openvino
    model = openvino.convert_model(str(onnx_file(spec, "fp32")))
    if variant == "int8":
        import nncf
        model = nncf.compress_weights(model)
    openvino.save_model(model, str(path), compress_to_fp16=False)
    return path


def run_openvino(spec: dict, precision: str, weights: str = "fp32") -> dict:
    if spec["part"] != "cross_encoder":
        raise Skip("ONNX export is made for the cross-encoder only")
    path = openvino_model(spec, weights)
    if spec.get("prepare_only"):
        return {}
    import openvino
    core = openvino.Core()
    if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        raise Skip("this CPU has no bf16 support in OpenVINO")
    compiled = core.compile_model(core.read_model(str(path)), "CPU", {
        "INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": spec["threads"],
        "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    tokenizer = pair_tokenizer(spec)

    def score(batch):
        ids, mask, tokens = encode_padded(tokenizer, batch)
        logits = request.infer({"input_ids": ids, "attention_mask": mask})[compiled.output(0)]
        return logits[:, 0], tokens

    got = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    return {**timed_batches(spec, score), "detail": f"inference precision {got}"}


# ------------------------------------------------------------------------------------------------
# CTranslate2
# ------------------------------------------------------------------------------------------------


def run_ctranslate2(spec: dict, compute_type: str) -> dict:
    """ctranslate2.Encoder runs the XLM-R encoder (its converter maps
    XLMRobertaForSequenceClassification without the head); the classification head (dense, tanh,
    out_proj on <s>) is applied in numpy with the checkpoint's weights."""
    if spec["part"] != "cross_encoder":
        raise Skip("only the cross-encoder's classification head is applied here")
    config = json.loads((Path(spec["checkpoint"]) / "config.json").read_text())
    if config.get("model_type") != "xlm-roberta":
        raise Skip(f"model_type {config.get('model_type')} is not XLM-RoBERTa")
    quantization = None if compute_type == "float32" else compute_type
    folder = Path(spec["artifacts"]) / f"ctranslate2-{compute_type}"
    if not (folder / "model.bin").is_file():
        from ctranslate2.converters import TransformersConverter
        TransformersConverter(spec["checkpoint"]).convert(str(folder), quantization=quantization,
                                                          force=True)
    if spec.get("prepare_only"):
        return {}
    import ctranslate2
    import numpy as np
    from safetensors import safe_open
    encoder = ctranslate2.Encoder(str(folder), device="cpu", compute_type=compute_type,
                                  intra_threads=spec["threads"], inter_threads=1)
    with safe_open(str(Path(spec["checkpoint"]) / "model.safetensors"), "np") as weights:
        head = {name: weights.get_tensor(f"classifier.{name}") for name in
                ("dense.weight", "dense.bias", "out_proj.weight", "out_proj.bias")}
    tokenizer = pair_tokenizer(spec, pad=False)

    def score(batch):
        rows = [e.ids for e in tokenizer.encode_batch([tuple(pair) for pair in batch])]
        hidden = np.asarray(encoder.forward_batch(rows).last_hidden_state)[:, 0]
        hidden = np.tanh(hidden @ head["dense.weight"].T + head["dense.bias"])
        logits = hidden @ head["out_proj.weight"].T + head["out_proj.bias"]
        return logits[:, 0], sum(map(len, rows))

    return timed_batches(spec, score)


# ------------------------------------------------------------------------------------------------
# GEMM peak
# ------------------------------------------------------------------------------------------------


def run_gemm_peak(spec: dict) -> dict:
    """n x n x n products, best of `repeats` after one warm-up, through LibTorch's default (MKL
    for fp32), oneDNN with a prepacked weight, bf16 and int8 (torch._int_mm)."""
    torch = use_torch_threads(spec)
    n, repeats = spec.get("gemm_size", 2048), spec.get("gemm_repeats", 5)

    def best(product) -> float:
        product()
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            product()
            seconds.append(time.perf_counter() - start)
        return 2 * n ** 3 / min(seconds) / 1e9

    a, b = torch.randn(n, n), torch.randn(n, n)
    a16, b16 = a.bfloat16(), b.bfloat16()
    a8 = torch.randint(-127, 128, (n, n), dtype=torch.int8)
    b8 = torch.randint(-127, 128, (n, n), dtype=torch.int8)
    linear = torch.ops.mkldnn._linear_pointwise
    candidates = [
        ("fp32", "torch.mm (LibTorch default: MKL)", lambda: torch.mm(a, b)),
        ("fp32", "oneDNN linear, prepacked weight",
         lambda w=torch.ops.mkldnn._reorder_linear_weight(b, n):
         linear(a, w, None, "none", [], "")),
        ("bf16", "torch.mm bf16", lambda: torch.mm(a16, b16)),
        ("bf16", "oneDNN linear bf16, prepacked weight",
         lambda w=torch.ops.mkldnn._reorder_linear_weight(b16, n):
         linear(a16, w, None, "none", [], "")),
        ("int8", "torch._int_mm int8 -> int32", lambda: torch._int_mm(a8, b8)),
    ]
    rows = []
    with torch.inference_mode():
        for dtype, label, product in candidates:
            try:
                rows.append({"dtype": dtype, "label": label, "gflops": best(product)})
            except (RuntimeError, AttributeError) as error:
                rows.append({"dtype": dtype, "label": label, "gflops": None,
                             "error": str(error).splitlines()[0]})
    return {"gemm": rows, "size": n, "repeats": repeats}


# ------------------------------------------------------------------------------------------------
# Registry and entry point
# ------------------------------------------------------------------------------------------------

# name -> (label, dtype whose GEMM peak it is measured against, run function, parts it serves)
PEERS = {
    "flag-fp32": ("FlagEmbedding FlagReranker fp32 (reference)", "fp32", run_flag_reranker,
                  {"cross_encoder"}),
    "flag-m3-fp32": ("FlagEmbedding BGEM3FlagModel dense fp32 (reference)", "fp32", run_flag_m3,
                     {"bge_m3"}),
    "flag-llm-fp32": ("FlagEmbedding FlagLLMReranker fp32 (reference)", "fp32",
                      run_flag_llm_reranker, {"llm_reranker"}),
    "st-fp32": ("sentence-transformers CrossEncoder fp32", "fp32",
                lambda spec: run_cross_encoder(spec, False), {"cross_encoder"}),
    "st-bf16": ("sentence-transformers CrossEncoder bf16", "bf16",
                lambda spec: run_cross_encoder(spec, True), {"cross_encoder"}),
    "ort-fp32": ("ONNX Runtime fp32", "fp32", lambda spec: run_onnxruntime(spec, "fp32"),
                 {"cross_encoder"}),
    "ort-opt": ("ONNX Runtime fp32, transformer-optimized", "fp32",
                lambda spec: run_onnxruntime(spec, "opt"), {"cross_encoder"}),
    "ort-int8": ("ONNX Runtime int8 (optimized + quantize_dynamic)", "int8",
                 lambda spec: run_onnxruntime(spec, "int8"), {"cross_encoder"}),
    "ov-fp32": ("OpenVINO fp32", "fp32", lambda spec: run_openvino(spec, "f32"),
                {"cross_encoder"}),
    "ov-bf16": ("OpenVINO bf16", "bf16", lambda spec: run_openvino(spec, "bf16"),
                {"cross_encoder"}),
    "ov-int8": ("OpenVINO int8 weights (nncf), bf16 inference", "int8",
                lambda spec: run_openvino(spec, "bf16", "int8"), {"cross_encoder"}),
    "ct2-fp32": ("CTranslate2 fp32", "fp32", lambda spec: run_ctranslate2(spec, "float32"),
                 {"cross_encoder"}),
    "ct2-int8": ("CTranslate2 int8", "int8", lambda spec: run_ctranslate2(spec, "int8"),
                 {"cross_encoder"}),
}


# Systems whose worker first converts the checkpoint (peer_bench runs that step on its own).
CONVERTED = {"ort-fp32", "ort-opt", "ort-int8", "ov-fp32", "ov-bf16", "ov-int8", "ct2-fp32",
             "ct2-int8"}


def worker_main(system: str, spec_path: Path, result_path: Path, prepare_only: bool) -> int:
    spec = json.loads(spec_path.read_text())
    spec["prepare_only"] = prepare_only
    try:
        if system == "gemm":
            result = run_gemm_peak(spec)
        else:
            result = PEERS[system][2](spec)
    except Skip as reason:
        result = {"skipped": str(reason)}
    result["peak_rss"] = peak_rss()
    result_path.write_text(json.dumps(result))
    return 0

