"""What every exporter (``models/<family>/export.py``) does the same way.

A bundle is model.pt (a TorchScript trace), a tokenizer file and engine.json.
Each exporter builds its own wrapper module, check batches and manifest body;
this module holds the shared sequence around them:

* ``save_verified_trace``: trace, save under a temporary name, reload, verify
  the reloaded file, then rename it to model.pt;
* ``manifest_header`` / ``source_block`` / ``write_manifest``: the fields
  every engine.json has, written atomically;
* tiny random checkpoints: ``spread_weights`` and ``write_tiny_marker``;
* XLM-R config checks shared by cross_encoder and bge_m3.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path

import torch
import transformers
from torch import nn

MODEL_FILE = "model.pt"
MODEL_FORMATS = ("torchscript", "aoti")
MANIFEST_FILE = "engine.json"
MANIFEST_SCHEMA = Path(__file__).resolve().parent / "manifest.schema.json"
# Written into every tiny checkpoint; the manifest's source.tiny says whether
# a bundle was made from one.
TINY_MARKER = "tiny_checkpoint.json"

# Max abs difference allowed between traced and eager outputs.  Trace and eager
# run the same kernels, so anything above float noise means the trace baked in
# a shape- or padding-dependent branch.
TRACE_TOL = 1e-5


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------

def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def atomic_write_bytes(path: Path, write) -> None:
    """``write(tmp_path)``, then rename over ``path``: readers never see a
    half-written file, and a failed write leaves the old one in place."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def atomic_copy(src: Path, dst: Path) -> None:
    atomic_write_bytes(dst, lambda p: shutil.copyfile(src, p))


def hf_checkpoint_dir(checkpoint_dir) -> Path:
    """``checkpoint_dir`` resolved, after checking it holds a HF config.json."""
    ckpt = Path(checkpoint_dir).resolve()
    if not (ckpt / "config.json").is_file():
        raise FileNotFoundError(f"{ckpt}: no config.json (not a HF checkpoint directory)")
    return ckpt


# --------------------------------------------------------------------------
# Tracing and verification
# --------------------------------------------------------------------------

@contextlib.contextmanager
def quiet_transformers():
    """Lower transformers' logging to errors for the block, then restore it.

    Tracing reads every module attribute, including HF's loss_function
    property, which logs a misleading "loss_type=None" warning; loading a
    backbone without its pooler and FlagEmbedding's encode log similar noise.
    """
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)


class FirstOutput(nn.Module):
    """Fixes the (input_ids, attention_mask, token_type_ids) signature and
    returns the HF model's first output as float32 (logits for a sequence
    classifier, last_hidden_state for a bare encoder), so the TorchScript
    module has a plain Tensors -> Tensor interface for C++."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                         token_type_ids=token_type_ids)
        return out[0].float()


def parameter_name(module: nn.Module, tensor: torch.Tensor) -> str:
    for name, p in module.named_parameters():
        if p is tensor:
            return name
    raise RuntimeError("word-embedding weight not found among module parameters")


def check_lengths(max_length: int) -> list[list[int]]:
    """Row lengths of the encoder check batches: batch 1 without padding, an
    unseen length with padding, and the longest checked row.

    The graph does not depend on length, so the longest row is capped at
    1024: an 8192-token eager forward of a large model takes minutes on CPU.
    """
    longest = min(max_length, 1024)
    return [[5], [min(37, longest), 20, 3], [longest, min(64, longest), 17, 6]]


def compare_with_eager(loaded, eager: nn.Module, batch, checks, check_output) -> float:
    """Run ``loaded`` and ``eager`` on ``batch(lengths)`` for each of ``checks``;
    ``check_output(got, lengths, inputs)`` validates shapes and dtypes.  Outputs
    may be a tensor or a tuple of tensors.  Returns the worst max abs diff."""
    worst = 0.0
    for lengths in checks:
        inputs = batch(lengths)
        ref = eager(*inputs)
        got = loaded(*inputs)
        check_output(got, lengths, inputs)
        pairs = zip(got, ref) if isinstance(got, tuple) else [(got, ref)]
        diff = max((g - r).abs().max().item() for g, r in pairs)
        worst = max(worst, diff)
        if not diff <= TRACE_TOL:
            raise RuntimeError(f"trace verification failed for lengths {lengths}: "
                               f"max abs diff {diff:.3g} > {TRACE_TOL}")
    return worst


class RowScaledEmbedding(nn.Module):
    """The word-embedding lookup as every bundle traces it:
    ``table[ids].type_as(row_scale) * row_scale[ids]``.

    In fp32 the scale is all ones and changes nothing.  It lets the engine keep
    the table compressed and dequantise only the rows a batch looks up: an int8
    table with one scale per row (``embedding_dtype: int8``), or a bf16 table in
    an fp32 model, whose rows come back in the scale's dtype.  The table keeps
    its parameter name; the scale is the buffer ``row_scale`` beside it.
    """

    def __init__(self, embedding: nn.Embedding):
        super().__init__()
        self.weight = embedding.weight
        self.padding_idx = embedding.padding_idx
        self.embedding_dim = embedding.embedding_dim
        self.num_embeddings = embedding.num_embeddings
        self.register_buffer("row_scale", torch.ones(embedding.weight.shape[0], 1,
                                                     dtype=embedding.weight.dtype))

    def forward(self, ids):
        rows = nn.functional.embedding(ids, self.weight).type_as(self.row_scale)
        return rows * nn.functional.embedding(ids, self.row_scale)


def install_row_scaled_embedding(module: nn.Module, embedding_weight: torch.Tensor) -> None:
    """Replaces the nn.Embedding that owns ``embedding_weight`` inside ``module``
    by a RowScaledEmbedding sharing the same weight."""
    for name, child in module.named_modules():
        if isinstance(child, nn.Embedding) and child.weight is embedding_weight:
            parent_name, _, attribute = name.rpartition(".")
            parent = module.get_submodule(parent_name) if parent_name else module
            setattr(parent, attribute, RowScaledEmbedding(child))
            return
        if isinstance(child, RowScaledEmbedding) and child.weight is embedding_weight:
            return
    raise RuntimeError("no nn.Embedding owns the word-embedding weight")


def embedding_scale_name(embedding_parameter: str) -> str:
    """The row_scale buffer beside the table ``embedding_parameter`` ('...weight')."""
    return embedding_parameter.rpartition(".")[0] + ".row_scale"


class Float32Head(nn.Module):
    """Runs a small head (a classifier, a pooler) in float32 inside a graph traced in bf16 or
    fp16: a logit rounded to bf16 is only good to 2-3 digits, so passages of one query would tie;
    the head's work is a few [batch, hidden] products and costs nothing."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, features, *args, **kwargs):
        return self.head(features.float(), *args, **kwargs)


def classifier_heads(model: nn.Module) -> list[nn.Module]:
    """A HF sequence classifier's classifier and, for BERT, the pooler before it: the heads a bf16
    or fp16 bundle keeps in float32 (Float32Head). None for a bare encoder."""
    pooler = getattr(getattr(model, model.base_model_prefix, None), "pooler", None)
    classifier = getattr(model, "classifier", None)
    return [m for m in (pooler, classifier) if m is not None] if classifier is not None else []


def _install_float32_heads(module: nn.Module, heads) -> set[int]:
    """Wraps each of ``heads`` (submodules of ``module``) in a Float32Head; returns the ids of
    their tensors, which stay float32."""
    kept = set()
    for head in heads:
        for name, child in module.named_modules():
            if child is head:
                parent_name, _, attribute = name.rpartition(".")
                parent = module.get_submodule(parent_name) if parent_name else module
                setattr(parent, attribute, Float32Head(child))
                kept.update(id(t) for t in [*child.parameters(), *child.buffers()])
                break
        else:
            raise RuntimeError(f"head {type(head).__name__} is not part of the traced module")
    return kept


def dtype_fields(dtype: str) -> dict:
    """engine.json ``dtype`` (the stored matrices) and ``graph_dtype`` (the dtype the graph was
    traced in) of a bundle exported in ``dtype``."""
    name = DTYPES[dtype][0]
    return {"dtype": name, "graph_dtype": name}


def save_verified_trace(module: nn.Module, example, out_dir: Path, verify,
                        embedding_weight: torch.Tensor, *, ignore_tracer_warnings: bool = False,
                        dtype: str = "fp32", float32_heads=(), model_format: str = "torchscript",
                        methods: dict | None = None):
    """Trace ``module`` on ``example`` into ``out_dir``/model.pt.

    ``verify(loaded)`` gets the saved-and-reloaded module, raises on any
    mismatch and returns what the caller wants to report.  The word-embedding
    parameter (``embedding_weight``, found by identity in ``module``) must
    survive under the same name: engine.json records it for C++.  Its lookup
    is traced as a RowScaledEmbedding (the module is changed in place, so the
    eager side of ``verify`` runs the same lookup).

    ``dtype`` bf16 or fp16 casts every floating-point parameter and buffer of the module to that
    dtype first, so the whole graph runs in it, as ``model.half()`` does in FlagReranker and
    sentence-transformers; ``verify``'s eager references then run in it too. ``float32_heads``
    (submodules, e.g. the classifier) stay float32 and get their input cast (Float32Head).

    ``model_format`` aoti writes an AOTInductor package (model.pt2, aoti_package.py) instead,
    exported from the same module and checked by the same ``verify``.

    ``methods`` (TorchScript only) traces more methods of the module beside forward, each on
    its example inputs: {name: inputs, or a function of the module (cast to ``dtype``) giving
    them}.

    Returns (model path, embedding parameter name, verify's result).
    """
    if model_format not in MODEL_FORMATS:
        raise ValueError(f"model format {model_format!r} is not one of {MODEL_FORMATS}")
    install_row_scaled_embedding(module, embedding_weight)
    if dtype != "fp32":
        kept = _install_float32_heads(module, float32_heads)
        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                if tensor.is_floating_point() and id(tensor) not in kept:
                    tensor.data = tensor.data.to(DTYPES[dtype][1])
    if model_format == "aoti":
        from models.common.aoti_package import save_verified_package  # noqa: PLC0415

        emb_name = parameter_name(module, embedding_weight)
        results = []
        with quiet_transformers():
            path = save_verified_package(module, example, out_dir,
                                         lambda loaded: results.append(verify(loaded)), emb_name)
        return path, emb_name, results[0]
    with quiet_transformers(), (warnings.catch_warnings() if ignore_tracer_warnings
                                else contextlib.nullcontext()):
        if ignore_tracer_warnings:
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
        if methods:
            inputs = {name: given(module) if callable(given) else given
                      for name, given in methods.items()}
            traced = torch.jit.trace_module(module, {"forward": example, **inputs},
                                            check_trace=False)
        else:
            traced = torch.jit.trace(module, example, check_trace=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / MODEL_FILE
    # Saved under a temporary name and only renamed once verified, so a
    # failed export never leaves a model.pt that disagrees with engine.json.
    pending = out_dir / (MODEL_FILE + ".tmp")
    torch.jit.save(traced, str(pending))

    # Verify the saved file, not the in-memory trace: it is what C++ loads.
    loaded = torch.jit.load(str(pending)).eval()
    verified = verify(loaded)

    emb_name = parameter_name(module, embedding_weight)
    if emb_name not in dict(loaded.named_parameters()):
        raise RuntimeError(f"{emb_name} missing from the saved module's named_parameters()")
    if embedding_scale_name(emb_name) not in dict(loaded.named_buffers()):
        raise RuntimeError(f"{embedding_scale_name(emb_name)} missing from the saved module")
    os.replace(pending, model_path)
    return model_path, emb_name, verified


def resolve_max_length(max_length: int | None, default: int, max_positions: int) -> int:
    """The manifest's default truncation length: ``max_length`` if given, else
    ``default``; either must leave room for specials and fit the positions."""
    if max_length is None:
        max_length = default
    if not 8 <= max_length <= max_positions:
        raise ValueError(f"max_length {max_length} must be in [8, {max_positions}]")
    return max_length


# --------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------

def manifest_header(family: str, model_path: Path) -> dict:
    """The first engine.json fields, the same for every family; a package (model.pt2) adds the
    machine it was compiled for."""
    header = {
        "format_version": 1,
        "family": family,
        "model_format": "aoti" if model_path.suffix == ".pt2" else "torchscript",
        "model_file": model_path.name,
        "model_sha256": sha256_file(model_path),
    }
    if header["model_format"] == "aoti":
        from models.common.aoti_package import compile_target  # noqa: PLC0415

        header["compiled_for"] = compile_target()
    return header


def encoder_architecture(cfg, model_type: str | None = None) -> dict:
    """engine.json ``architecture`` of a BERT-like encoder (before family extras)."""
    return {
        "model_type": model_type or cfg.model_type,
        "num_layers": cfg.num_hidden_layers,
        "hidden_size": cfg.hidden_size,
        "num_heads": cfg.num_attention_heads,
        "intermediate_size": cfg.intermediate_size,
    }


def source_block(checkpoint: Path, **details) -> dict:
    """engine.json ``source``: where the bundle came from, ``details`` in the
    order given, then the library versions that traced it."""
    return {
        "checkpoint": str(checkpoint),
        **details,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "tiny": (checkpoint / TINY_MARKER).is_file(),
    }


DTYPES = {"fp32": ("float32", torch.float32), "bf16": ("bfloat16", torch.bfloat16),
           "fp16": ("float16", torch.float16)}
# The word-embedding table stored beside model.pt, raw and row-major, so the engine can map it
# into memory and only the rows a batch looks up become resident.
EMBEDDING_FILES = {"int8": "embeddings.int8", "bf16": "embeddings.bf16"}


def quantize_rows_int8(table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 with one scale per row: ``row ≈ q * scale``, scale = max|row| / 127.
    Returns (q int8 [V, H], scale float32 [V, 1])."""
    table = table.float()
    scale = table.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0
    q = torch.round(table / scale).clamp_(-127, 127).to(torch.int8)
    return q, scale


def kept_dtype(name: str, tensor: torch.Tensor, scale_name: str | None,
               dtype: torch.dtype) -> torch.dtype:
    """The dtype a floating-point tensor other than the table is stored in: ``dtype`` for
    matrices, float32 for vectors (biases, LayerNorm weights) and the table's row scale. The
    engine keeps the same rule when it casts at load (engine/runtime/model.h, kept_dtype): they
    cost next to nothing, and on the bce-reranker-base shape they halve bf16's error."""
    return torch.float32 if tensor.dim() <= 1 or name == scale_name else dtype


@torch.no_grad()
def convert_bundle_dtype(out_dir: Path, dtype: str, embedding_dtype: str = "same") -> None:
    """Stores a verified fp32 bundle's floating-point matrices in ``dtype`` (fp32, bf16 or fp16),
    so the engine loads them at their final size instead of loading fp32 and casting; vectors and
    the row scale stay float32 (kept_dtype). Integer buffers (position ids) stay as they are.
    The graph is unchanged: one traced in fp32 runs under autocast in the engine (engine.json's
    ``graph_dtype`` stays float32); one traced in ``dtype`` (save_verified_trace) already has
    every tensor in it, and only its table moves. engine.json records the new dtype and checksum.

    ``embedding_dtype`` int8 or bf16 moves the word-embedding table out of model.pt into a raw file
    (EMBEDDING_FILES), int8 with one scale per row kept in the table's ``row_scale`` buffer; the
    engine maps the file into memory. model.pt keeps an empty table of the same width."""
    name, torch_dtype = DTYPES[dtype]
    model_path = out_dir / MODEL_FILE
    manifest = json.loads((out_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    graph_dtype = manifest.get("graph_dtype", "float32")
    if graph_dtype not in ("float32", name):
        raise ValueError(f"{out_dir}: the graph was traced in {graph_dtype}; its weights cannot "
                         f"be stored in {name} (export it again with --dtype {dtype})")
    module = torch.jit.load(str(model_path))
    tensors = dict(module.named_parameters())
    tensors.update(dict(module.named_buffers()))
    table_name = manifest["embedding_parameter"]
    scale_name = manifest.get("embedding_scale")
    for tensor_name, tensor in tensors.items():
        if tensor.is_floating_point() and tensor_name != table_name and graph_dtype == "float32":
            tensor.data = tensor.data.to(kept_dtype(tensor_name, tensor, scale_name, torch_dtype))
    table = tensors[table_name]
    if embedding_dtype == "same":
        table.data = table.data.to(torch_dtype)
    else:
        if scale_name not in tensors:
            raise ValueError(f"{out_dir}: the bundle has no embedding row scale; re-export it")
        if embedding_dtype == "int8":
            stored, scale = quantize_rows_int8(table.data)
            # In the graph's dtype: the looked-up rows take the scale's dtype.
            tensors[scale_name].data = scale.to(tensors[scale_name].dtype)
            raw = stored.numpy()
        elif embedding_dtype == "bf16":
            stored = table.data.to(torch.bfloat16)
            raw = stored.view(torch.int16).numpy()
        else:
            raise ValueError(f"embedding dtype {embedding_dtype!r} is not int8 or bf16")
        table.requires_grad_(False)  # an int8 tensor cannot require gradients
        table_file = EMBEDDING_FILES[embedding_dtype]
        atomic_write_bytes(out_dir / table_file, lambda p: raw.tofile(p))
        rows, cols = stored.shape
        table.data = torch.empty((0, cols), dtype=stored.dtype)
        manifest["embedding_table"] = {
            "file": table_file, "dtype": DTYPES[embedding_dtype][0] if embedding_dtype != "int8"
            else "int8", "rows": rows, "cols": cols,
            "sha256": sha256_file(out_dir / table_file)}
    atomic_write_bytes(model_path, lambda p: torch.jit.save(module, str(p)))
    manifest["dtype"] = name
    manifest["model_sha256"] = sha256_file(model_path)
    write_manifest(out_dir, manifest)


def manifest_schema() -> dict:
    """The bundle contract, models/common/manifest.schema.json: the engine checks every
    engine.json it reads against the same file (built into it)."""
    return json.loads(MANIFEST_SCHEMA.read_text(encoding="utf-8"))


def check_manifest(manifest: dict) -> None:
    """Raises ValueError naming the key if ``manifest`` breaks the schema."""
    import jsonschema  # noqa: PLC0415 (only the exporters and tests need it)

    errors = sorted(jsonschema.Draft202012Validator(manifest_schema()).iter_errors(manifest),
                    key=lambda e: list(e.absolute_path))
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path) or "(document)"
        raise ValueError(f"engine.json breaks {MANIFEST_SCHEMA.name} at {where}: "
                         f"{errors[0].message}")


def write_manifest(out_dir: Path, manifest: dict) -> None:
    check_manifest(manifest)
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    atomic_write_bytes(out_dir / MANIFEST_FILE, lambda p: p.write_text(text, encoding="utf-8"))


# --------------------------------------------------------------------------
# Tiny random checkpoints
# --------------------------------------------------------------------------

@torch.no_grad()
def spread_weights(model: nn.Module, seed: int) -> None:
    """Redraw every parameter of a BERT-like model so a tiny one is a
    sensitive test fixture.

    HF's init zeroes all biases, sets LayerNorm to identity and uses std 0.02,
    which yields logits around 1e-3 that barely depend on the input: a C++ bug
    (wrong position offset, dropped bias, bad mask) would hide under any
    reasonable tolerance.  Fan-in scaled weights keep activations O(1) and
    make the logits vary clearly between inputs.
    """
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        # LayerNorm and RMSNorm scales (ModernBERT's norm, Qwen3's q_norm and layer norms).
        if name.endswith("weight") and ("LayerNorm" in name or p.dim() == 1):
            p.copy_(1.0 + 0.1 * noise)
        elif name.endswith("bias"):
            p.copy_(0.1 * noise)
        elif "embeddings" in name:
            p.copy_(noise)
        else:  # Linear weight [out, in]
            p.copy_(noise / p.shape[1] ** 0.5)


def write_tiny_marker(out_dir: Path, params: dict) -> None:
    """Record a tiny checkpoint's seed and sizes beside it."""
    (out_dir / TINY_MARKER).write_text(json.dumps(params, indent=2) + "\n")


# --------------------------------------------------------------------------
# XLM-R (cross_encoder, bge_m3)
# --------------------------------------------------------------------------

def xlmr_special_ids(cfg, sp_size: int) -> dict:
    """Engine ids of the XLM-R specials after checking the config agrees.

    HF/fairseq mapping: <s>=0 <pad>=1 </s>=2 <unk>=3, piece k>=3 -> k+1,
    <mask> = sp_size + 1.  The embedding table may be larger, never smaller.
    """
    if cfg.vocab_size < sp_size + 2:
        raise ValueError(f"config vocab_size {cfg.vocab_size} < sentencepiece size {sp_size} + 2")
    if (cfg.bos_token_id, cfg.pad_token_id, cfg.eos_token_id) != (0, 1, 2):
        raise ValueError("expected XLM-R special ids bos=0 pad=1 eos=2 in config, got "
                         f"{(cfg.bos_token_id, cfg.pad_token_id, cfg.eos_token_id)}")
    return {"bos": 0, "pad": 1, "eos": 2, "unk": 3, "mask": sp_size + 1}


def xlmr_max_positions(cfg) -> int:
    # RoBERTa position ids run from pad_token_id + 1, so two slots are lost.
    return cfg.max_position_embeddings - cfg.pad_token_id - 1


def random_batch(gen: torch.Generator, lengths: list[int], vocab_size: int, pad_id: int,
                 bos_id: int, eos_id: int, first_id: int):
    """Pair-shaped rows ``<s> q </s></s> p </s>`` right-padded with <pad>;
    returns (input_ids, attention_mask, token_type_ids of zeros).

    Token ids avoid <pad>: RoBERTa derives position ids from ``ids != pad``,
    so a pad id inside a row would be a different (unrealistic) test.
    """
    width = max(lengths)
    ids = torch.full((len(lengths), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, n in enumerate(lengths):
        body = torch.randint(first_id, vocab_size, (n,), generator=gen)
        body[0] = bos_id
        body[-1] = eos_id
        if n >= 6:  # the pair separator, roughly in the middle
            mid = n // 2
            body[mid - 1] = eos_id
            body[mid] = eos_id
        ids[row, :n] = body
        mask[row, :n] = 1
    return ids, mask, torch.zeros_like(ids)
