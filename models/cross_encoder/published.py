"""Cross-encoders as sentence-transformers' CrossEncoder and transformers publish them: a
``*ForSequenceClassification`` of an encoder the engine traces (BERT: the ms-marco MiniLM
cross-encoders; ModernBERT: gte-reranker-modernbert-base; XLM-R without its sentencepiece model)
with tokenizer.json or vocab.txt.

The bundle scores as ``CrossEncoder.predict`` does: pairs tokenized with longest_first
truncation (manifest ``pair_truncation``), the classifier's logits, and the activation the
directory names (``directory_activation``), which ``model.options.activation: auto``
applies (manifest ``activation``).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn

from models.common.backbones import BACKBONES, backbone_kind
from models.common.bundle import (TRACE_TOL, check_lengths, classifier_heads, compare_with_eager,
                                  dtype_fields, embedding_scale_name, encoder_architecture,
                                  manifest_header, resolve_max_length, save_verified_trace,
                                  source_block, write_manifest)
from models.common.json_files import read_json
from models.common.tokenizer_files import bundle_tokenizer, random_rows

# CrossEncoder's activation_fn (a class's full name) -> the engine's activation.
_ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": "none",
    "torch.nn.modules.activation.Sigmoid": "sigmoid",
    "torch.nn.modules.activation.Softmax": "softmax",
}


class Logits(nn.Module):
    """(input_ids, attention_mask[, token_type_ids]) -> logits float32 [B, labels]."""

    def __init__(self, model: nn.Module, token_types: bool):
        super().__init__()
        self.model = model
        self.token_types = token_types

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.token_types:
            kwargs["token_type_ids"] = token_type_ids
        return self.model(**kwargs)[0].float()


def directory_activation(ckpt: Path, num_labels: int) -> str:
    """The activation CrossEncoder.predict applies: config_sentence_transformers.json's
    activation_fn (sentence-transformers 5), config.json's sentence_transformers.activation_fn
    (3 and 4), else its default: sigmoid for one label, none for several."""
    name = None
    settings = ckpt / "config_sentence_transformers.json"
    if settings.is_file():
        name = read_json(settings).get("activation_fn")
    if name is None:
        name = (read_json(ckpt / "config.json").get("sentence_transformers") or {}).get(
            "activation_fn")
    if name is None:
        return "sigmoid" if num_labels == 1 else "none"
    if name not in _ACTIVATIONS:
        raise ValueError(f"{ckpt}: activation_fn {name!r} is not one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]


def _max_length(ckpt: Path) -> int | None:
    """CrossEncoder's max_length, where the directory records one."""
    for name in ("sentence_bert_config.json", "tokenizer_config.json"):
        path = ckpt / name
        if path.is_file():
            value = read_json(path).get("max_seq_length" if name.startswith("sentence")
                                        else "model_max_length")
            if isinstance(value, int) and value < 1_000_000:
                return value
    return None


@torch.no_grad()
def export_published(ckpt: Path, out: Path, max_length: int | None, dtype: str,
                     model_format: str) -> Path:
    from transformers import AutoModelForSequenceClassification  # noqa: PLC0415

    t0 = time.time()
    kind = backbone_kind(ckpt)
    traits = BACKBONES[kind]
    if traits.causal:
        raise ValueError(f"{ckpt}: a {kind} sequence classifier is a decoder; LLM rerankers are "
                         "exported by models/llm_reranker")
    model = AutoModelForSequenceClassification.from_pretrained(
        ckpt, attn_implementation=traits.attention, dtype=torch.float32).eval()
    cfg = model.config
    out.mkdir(parents=True, exist_ok=True)
    token_types = traits.token_types and getattr(cfg, "type_vocab_size", 0) > 0
    tokenizer = bundle_tokenizer(ckpt, out, cfg)
    max_positions = cfg.max_position_embeddings
    if traits.position_offset:
        max_positions -= cfg.pad_token_id + 1
    default = min(_max_length(ckpt) or 512, max_positions)
    max_length = resolve_max_length(max_length, default, max_positions)

    wrapper = Logits(model, token_types).eval()
    gen = torch.Generator().manual_seed(1234)
    batch = lambda lengths: random_rows(gen, lengths, tokenizer, token_types)
    checks = check_lengths(max_length)

    def check_output(got, lengths, inputs):
        if got.shape != (len(lengths), cfg.num_labels) or got.dtype != torch.float32:
            raise RuntimeError(f"traced output has shape {tuple(got.shape)} {got.dtype}")

    model_path, emb_name, worst = save_verified_trace(
        wrapper, batch([11, 7]), out,
        lambda loaded: compare_with_eager(loaded, wrapper, batch, checks, check_output),
        model.get_input_embeddings().weight, dtype=dtype, float32_heads=classifier_heads(model),
        model_format=model_format, ignore_tracer_warnings=True)
    activation = directory_activation(ckpt, cfg.num_labels)
    manifest = {
        **manifest_header("cross_encoder", model_path),
        "architecture": {**encoder_architecture(cfg), "num_labels": cfg.num_labels},
        "vocab_size": tokenizer.vocab_size,
        "max_positions": max_positions,
        "max_length": max_length,
        "special_tokens": tokenizer.special_tokens,
        "tokenizer": tokenizer.manifest,
        "inputs": ["input_ids", "attention_mask"] + (["token_type_ids"] if token_types else []),
        "outputs": ["logits"],
        **dtype_fields(dtype),
        "embedding_parameter": emb_name,
        "embedding_scale": embedding_scale_name(emb_name),
        "pair_truncation": "longest_first",
        "activation": activation,
        "source": source_block(ckpt, model_class=type(model).__name__, layout="cross-encoder"),
    }
    write_manifest(out, manifest)
    print(f"bundle: {out}")
    print(f"  model:      {type(model).__name__} ({kind}) layers={cfg.num_hidden_layers} "
          f"hidden={cfg.hidden_size} labels={cfg.num_labels}, activation {activation}")
    print(f"  tokenizer:  {tokenizer.manifest['kind']} ({tokenizer.manifest['file']}), "
          f"vocab {tokenizer.vocab_size}, max_length={max_length}, longest_first pairs")
    print(f"  trace check: {len(checks)} batches, max abs diff {worst:.2e} (tol {TRACE_TOL:g})")
    print(f"  took {time.time() - t0:.1f}s")
    return out


def write_tiny_published(out_dir, seed: int, architecture: str, num_labels: int = 1) -> Path:
    """A tiny random CrossEncoder directory of ``architecture`` (bert, modernbert), saved by
    sentence-transformers' CrossEncoder itself, as ms-marco-MiniLM-L6-v2 and
    gte-reranker-modernbert-base are published."""
    import shutil  # noqa: PLC0415
    import tempfile  # noqa: PLC0415

    from sentence_transformers import CrossEncoder  # noqa: PLC0415
    from transformers import AutoModelForSequenceClassification  # noqa: PLC0415

    from models.common.bundle import spread_weights, write_tiny_marker  # noqa: PLC0415
    from models.common.tiny_encoders import tiny_config  # noqa: PLC0415

    out = Path(out_dir).resolve()
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch) / "base"
        config = tiny_config(architecture, base, num_labels=num_labels)
        torch.manual_seed(seed)
        model = AutoModelForSequenceClassification.from_config(config).eval()
        spread_weights(model, seed)
        model.save_pretrained(base, safe_serialization=True)
        if out.exists():
            shutil.rmtree(out)
        CrossEncoder(str(base), device="cpu").save(str(out))
    write_tiny_marker(out, {"seed": seed, "architecture": architecture,
                            "num_labels": num_labels})
    return out
