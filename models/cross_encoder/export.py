"""Export cross-encoder rerankers to an engine bundle.

XLM-R checkpoints with their sentencepiece model (BAAI/bge-reranker-base, -large, -v2-m3,
maidalun1020/bce-reranker-base_v1), scored as FlagReranker scores them, here; any other
sequence classifier of an encoder the exporters trace (BERT, ModernBERT, ...) with tokenizer.json
or vocab.txt, scored as sentence-transformers' CrossEncoder.predict scores it, in published.py.
Tiny random checkpoints of both for tests (``write_tiny_checkpoint``).

A bundle directory contains:
  model.pt                 TorchScript trace: (input_ids, attention_mask,
                           token_type_ids) int64 [B, T] -> logits float32 [B, L]
  sentencepiece.bpe.model  the XLM-R SentencePiece model (ids are shifted by
                           the HF/fairseq mapping, see engine.json special_tokens)
  engine.json              manifest read by the C++ engine
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch import nn
from transformers import (AutoConfig, AutoModelForSequenceClassification, XLMRobertaConfig,
                          XLMRobertaForSequenceClassification, XLMRobertaTokenizer,
                          XLMRobertaTokenizerFast)

from models.common.bundle import embedding_scale_name
from models.common.bundle import (TRACE_TOL, atomic_copy, check_lengths, classifier_heads,
                                  compare_with_eager, dtype_fields, encoder_architecture,
                                  FirstOutput, hf_checkpoint_dir, manifest_header, random_batch,
                                  resolve_max_length, save_verified_trace, source_block,
                                  spread_weights, write_manifest, write_tiny_marker,
                                  xlmr_max_positions, xlmr_special_ids)
from models.common.sentencepiece_training import (XLMR_SPM_FILE, check_xlmr_layout,
                                                  train_xlmr_sentencepiece)

SPM_FILE = XLMR_SPM_FILE

# Encoders whose HF forward takes (input_ids, attention_mask, token_type_ids)
# and puts a classifier on the first token.  Only XLM-R is tokenizer-supported
# by the engine today; the others are accepted by the model export path.
_ENCODER_TYPES = {"xlm-roberta", "roberta", "bert", "camembert", "electra"}

# Published sizes for ``tools/export.py --tiny --shape`` (random weights, small tokenizer).
TINY_SHAPES = {
    "bce-reranker-base": dict(hidden=768, layers=12, heads=12, intermediate=3072,
                              table_rows=250002),
    "bge-reranker-large": dict(hidden=1024, layers=24, heads=16, intermediate=4096,
                               table_rows=250002),
}


# --------------------------------------------------------------------------
# Tiny checkpoint
# --------------------------------------------------------------------------

def write_tiny_checkpoint(out_dir, seed: int = 0, vocab_size: int = 1000, hidden: int = 32,
                          layers: int = 2, heads: int = 4, intermediate: int = 64,
                          max_positions: int = 512, num_labels: int = 1,
                          table_rows: int = 0, architecture: str = "xlm-roberta") -> Path:
    """Write a small random XLM-R cross-encoder checkpoint, laid out like the
    published ones (config.json, model.safetensors, sentencepiece.bpe.model,
    tokenizer.json, tokenizer_config.json, special_tokens_map.json).

    ``vocab_size`` is the SentencePiece size; the model vocabulary is that +2
    (<pad> and <mask> are added by the HF/fairseq mapping).  ``table_rows``
    makes the embedding table that large (a published model's 250002 rows)
    while the tokenizer stays small.

    ``architecture`` bert or modernbert writes a CrossEncoder directory of that architecture
    instead, with a tokenizer.json (published.py).
    """
    if architecture != "xlm-roberta":
        from models.cross_encoder.published import write_tiny_published  # noqa: PLC0415

        return write_tiny_published(out_dir, seed, architecture, num_labels)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    spm_path = out / SPM_FILE
    sp_size = train_xlmr_sentencepiece(spm_path, vocab_size, seed)

    config = XLMRobertaConfig(
        vocab_size=max(sp_size + 2, table_rows),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_positions + 2,  # positions start at pad+1
        type_vocab_size=1,
        layer_norm_eps=1e-5,  # as in the published XLM-R configs (HF default 1e-12)
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
        num_labels=num_labels,
        architectures=["XLMRobertaForSequenceClassification"],
    )
    torch.manual_seed(seed)
    model = XLMRobertaForSequenceClassification(config).eval()
    spread_weights(model, seed)
    model.save_pretrained(out, safe_serialization=True)

    slow = XLMRobertaTokenizer(vocab_file=str(spm_path), model_max_length=max_positions)
    slow.save_pretrained(out)
    # Converting from the slow tokenizer is how tokenizer.json was produced
    # for the published checkpoints; AutoTokenizer (used by FlagReranker)
    # loads this fast one.
    fast = XLMRobertaTokenizerFast(vocab_file=str(spm_path), model_max_length=max_positions)
    fast.save_pretrained(out)

    write_tiny_marker(out, {
        "seed": seed, "sentencepiece_size": sp_size, "hidden": hidden, "layers": layers,
        "heads": heads, "intermediate": intermediate, "max_positions": max_positions,
        "num_labels": num_labels, "table_rows": config.vocab_size})
    return out


# --------------------------------------------------------------------------
# Bundle export
# --------------------------------------------------------------------------

def _load_model(checkpoint_dir: Path) -> nn.Module:
    config = AutoConfig.from_pretrained(checkpoint_dir)
    if config.model_type not in _ENCODER_TYPES:
        raise ValueError(f"{checkpoint_dir}: model_type {config.model_type!r} is not a supported "
                         f"BERT-like encoder ({sorted(_ENCODER_TYPES)})")
    # SDPA attention (fused kernels; +36% in fp32 on the bce-reranker-base
    # shape, docs/speed.md).  The trace stays valid for every batch: while
    # tracing, transformers skips SDPA's all-ones mask shortcut, so the padded
    # 4D mask is always part of the graph, and an encoder is never causal.
    # compare_with_eager checks batches with and without padding.
    attention = "sdpa" if config.model_type in ("xlm-roberta", "roberta", "bert") else "eager"
    kwargs = dict(attn_implementation=attention, torchscript=True, dtype=torch.float32)
    cls = (XLMRobertaForSequenceClassification if config.model_type == "xlm-roberta"
           else AutoModelForSequenceClassification)
    return cls.from_pretrained(checkpoint_dir, **kwargs).eval()


@torch.no_grad()
def export_bundle(checkpoint_dir, out_dir, max_length: int | None = None,
                  dtype: str = "fp32", model_format: str = "torchscript") -> Path:
    """Trace ``checkpoint_dir`` into a bundle at ``out_dir`` and verify it.

    ``max_length`` is recorded in the manifest as the default truncation
    length.  It defaults to FlagReranker's default, 512 (or the position
    limit if smaller): bge-reranker-v2-m3 accepts 8192 positions, but its
    reference scores are produced at 512 unless asked otherwise.
    """
    t0 = time.time()
    ckpt = hf_checkpoint_dir(checkpoint_dir)
    out = Path(out_dir).resolve()
    spm_src = ckpt / SPM_FILE
    if not spm_src.is_file() or AutoConfig.from_pretrained(ckpt).model_type != "xlm-roberta":
        # A CrossEncoder directory as published (tokenizer.json or vocab.txt): scored as
        # CrossEncoder.predict scores it.
        from models.cross_encoder.published import export_published  # noqa: PLC0415

        return export_published(ckpt, out, max_length, dtype, model_format)

    model = _load_model(ckpt)
    cfg = model.config
    sp_size = check_xlmr_layout(spm_src)
    specials = xlmr_special_ids(cfg, sp_size)
    max_positions = xlmr_max_positions(cfg)
    max_length = resolve_max_length(max_length, min(512, max_positions), max_positions)

    wrapper = FirstOutput(model).eval()
    gen = torch.Generator().manual_seed(1234)
    batch = lambda lengths: random_batch(gen, lengths, cfg.vocab_size, 1, 0, 2, first_id=3)
    checks = check_lengths(max_length)

    def check_output(got, lengths, inputs):
        if got.shape != (len(lengths), cfg.num_labels) or got.dtype != torch.float32:
            raise RuntimeError(f"traced output has shape {tuple(got.shape)} {got.dtype}")

    # Example with padding, so the mask arithmetic is part of the traced graph
    # exactly as it runs for padded batches.
    model_path, emb_name, worst = save_verified_trace(
        wrapper, batch([11, 7]), out,
        lambda loaded: compare_with_eager(loaded, wrapper, batch, checks, check_output),
        model.get_input_embeddings().weight, dtype=dtype, float32_heads=classifier_heads(model),
        model_format=model_format)

    atomic_copy(spm_src, out / SPM_FILE)
    manifest = {
        **manifest_header("cross_encoder", model_path),
        "architecture": {**encoder_architecture(cfg), "num_labels": cfg.num_labels},
        "vocab_size": specials["mask"] + 1,  # the ids the tokenizer makes; the table may be larger
        "max_positions": max_positions,
        "max_length": max_length,
        "special_tokens": specials,
        "tokenizer": {"kind": "xlmr_sentencepiece", "file": SPM_FILE},
        "inputs": ["input_ids", "attention_mask", "token_type_ids"],
        "outputs": ["logits"],
        **dtype_fields(dtype),
        "embedding_parameter": emb_name,
        "embedding_scale": embedding_scale_name(emb_name),
        "source": source_block(ckpt, model_class=type(model).__name__),
    }
    write_manifest(out, manifest)

    arch = manifest["architecture"]
    print(f"bundle: {out}")
    print(f"  model:      {type(model).__name__} ({cfg.model_type}) layers={arch['num_layers']} "
          f"hidden={arch['hidden_size']} heads={arch['num_heads']} labels={arch['num_labels']}")
    print(f"  vocab:      {cfg.vocab_size} (sentencepiece {sp_size}), mask={specials['mask']}, "
          f"max_positions={max_positions}, max_length={max_length}")
    print(f"  {model_path.name}:   {model_path.stat().st_size / 1e6:.2f} MB sha256={manifest['model_sha256'][:16]}...")
    print(f"  embedding:  {emb_name}")
    print(f"  trace check: {len(checks)} batches, max abs diff {worst:.2e} (tol {TRACE_TOL:g})")
    print(f"  took {time.time() - t0:.1f}s")
    return out
