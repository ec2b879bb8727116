"""Export XLM-RoBERTa cross-encoder rerankers to an engine bundle.

Supported checkpoints: BAAI/bge-reranker-base, -large, -v2-m3 and
maidalun1020/bce-reranker-base_v1 (all XLMRobertaForSequenceClassification
with the XLM-R SentencePiece tokenizer), plus a tiny random checkpoint of the
same architecture for tests (``write_tiny_checkpoint``).

A bundle directory contains:
  model.pt                 TorchScript trace: (input_ids, attention_mask,
                           token_type_ids) int64 [B, T] -> logits float32 [B, L]
  sentencepiece.bpe.model  the XLM-R SentencePiece model (ids are shifted by
                           the HF/fairseq mapping, see engine.json special_tokens)
  engine.json              manifest read by the C++ engine
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import sentencepiece as spm
import torch
import transformers
from torch import nn
from transformers import (AutoConfig, AutoModelForSequenceClassification, XLMRobertaConfig,
                          XLMRobertaForSequenceClassification, XLMRobertaTokenizer,
                          XLMRobertaTokenizerFast)

from models.common.multilingual_corpus import corpus_lines

SPM_FILE = "sentencepiece.bpe.model"
MODEL_FILE = "model.pt"
MANIFEST_FILE = "engine.json"
TINY_MARKER = "tiny_checkpoint.json"

# Encoders whose HF forward takes (input_ids, attention_mask, token_type_ids)
# and puts a classifier on the first token.  Only XLM-R is tokenizer-supported
# by the engine today; the others are accepted by the model export path.
_ENCODER_TYPES = {"xlm-roberta", "roberta", "bert", "camembert", "electra"}

# Max abs difference allowed between traced and eager logits.  Trace and eager
# run the same kernels, so anything above float noise means the trace baked in
# a shape- or padding-dependent branch.
_TRACE_TOL = 1e-5


# --------------------------------------------------------------------------
# Tiny checkpoint
# --------------------------------------------------------------------------

def _train_sentencepiece(path: Path, vocab_size: int, seed: int) -> None:
    """Train a unigram SentencePiece model laid out like XLM-R's.

    XLM-R's ``sentencepiece.bpe.model`` is (despite its name) a unigram model
    with nmt_nfkc normalization and pieces 0=<unk>, 1=<s>, 2=</s>, no <pad>
    piece; HF then maps ids as <s>=0, <pad>=1, </s>=2, <unk>=3, others +1.
    """
    buf = tempfile.SpooledTemporaryFile()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus_lines(seed=seed)),
        model_writer=buf,
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        normalization_rule_name="nmt_nfkc",
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        # One thread keeps EM summation order, hence the model, deterministic.
        num_threads=1,
        minloglevel=2,
    )
    buf.seek(0)
    path.write_bytes(buf.read())


@torch.no_grad()
def _spread_weights(model: nn.Module, seed: int) -> None:
    """Redraw every parameter so the tiny model is a sensitive test fixture.

    HF's init zeroes all biases, sets LayerNorm to identity and uses std 0.02,
    which yields logits around 1e-3 that barely depend on the input: a C++ bug
    (wrong position offset, dropped bias, bad mask) would hide under any
    reasonable tolerance.  Fan-in scaled weights keep activations O(1) and
    make the logits vary clearly between inputs.
    """
    gen = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        if "LayerNorm" in name and name.endswith("weight"):
            p.copy_(1.0 + 0.1 * noise)
        elif name.endswith("bias"):
            p.copy_(0.1 * noise)
        elif "embeddings" in name:
            p.copy_(noise)
        else:  # Linear weight [out, in]
            p.copy_(noise / p.shape[1] ** 0.5)


def write_tiny_checkpoint(out_dir, seed: int = 0, vocab_size: int = 1000, hidden: int = 32,
                          layers: int = 2, heads: int = 4, intermediate: int = 64,
                          max_positions: int = 512, num_labels: int = 1) -> Path:
    """Write a small random XLM-R cross-encoder checkpoint, laid out like the
    published ones (config.json, model.safetensors, sentencepiece.bpe.model,
    tokenizer.json, tokenizer_config.json, special_tokens_map.json).

    ``vocab_size`` is the SentencePiece size; the model vocabulary is that +2
    (<pad> and <mask> are added by the HF/fairseq mapping).
    """
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    spm_path = out / SPM_FILE
    _train_sentencepiece(spm_path, vocab_size, seed)
    sp_size = spm.SentencePieceProcessor(model_file=str(spm_path)).get_piece_size()

    config = XLMRobertaConfig(
        vocab_size=sp_size + 2,
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
    _spread_weights(model, seed)
    model.save_pretrained(out, safe_serialization=True)

    slow = XLMRobertaTokenizer(vocab_file=str(spm_path), model_max_length=max_positions)
    slow.save_pretrained(out)
    # Converting from the slow tokenizer is how tokenizer.json was produced
    # for the published checkpoints; AutoTokenizer (used by FlagReranker)
    # loads this fast one.
    fast = XLMRobertaTokenizerFast(vocab_file=str(spm_path), model_max_length=max_positions)
    fast.save_pretrained(out)

    (out / TINY_MARKER).write_text(json.dumps({
        "seed": seed, "sentencepiece_size": sp_size, "hidden": hidden, "layers": layers,
        "heads": heads, "intermediate": intermediate, "max_positions": max_positions,
        "num_labels": num_labels}, indent=2) + "\n")
    return out


# --------------------------------------------------------------------------
# Bundle export
# --------------------------------------------------------------------------

class LogitsOnly(nn.Module):
    """Fixes the input signature and returns only the logits tensor, so the
    TorchScript module has a plain Tensor -> Tensor interface for C++."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                         token_type_ids=token_type_ids)
        return out[0].float()


def _load_model(checkpoint_dir: Path) -> nn.Module:
    config = AutoConfig.from_pretrained(checkpoint_dir)
    if config.model_type not in _ENCODER_TYPES:
        raise ValueError(f"{checkpoint_dir}: model_type {config.model_type!r} is not a supported "
                         f"BERT-like encoder ({sorted(_ENCODER_TYPES)})")
    # eager attention: the SDPA path picks kernels/mask shortcuts from Python
    # conditions on the example inputs, which a trace would freeze.
    kwargs = dict(attn_implementation="eager", torchscript=True, dtype=torch.float32)
    cls = (XLMRobertaForSequenceClassification if config.model_type == "xlm-roberta"
           else AutoModelForSequenceClassification)
    return cls.from_pretrained(checkpoint_dir, **kwargs).eval()


def _spm_layout(spm_path: Path) -> int:
    """Check the SentencePiece model has the XLM-R id layout; return its size."""
    sp = spm.SentencePieceProcessor(model_file=str(spm_path))
    got = (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id())
    if got != (0, 1, 2, -1):
        raise ValueError(f"{spm_path}: expected XLM-R piece layout unk=0 bos=1 eos=2 no pad, "
                         f"got unk,bos,eos,pad={got}")
    return sp.get_piece_size()


def _random_batch(gen: torch.Generator, lengths: list[int], vocab_size: int, pad_id: int,
                  bos_id: int, eos_id: int, first_id: int):
    """Pair-shaped rows ``<s> q </s></s> p </s>`` right-padded with <pad>.

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


def _param_name(module: nn.Module, tensor: torch.Tensor) -> str:
    for name, p in module.named_parameters():
        if p is tensor:
            return name
    raise RuntimeError("word-embedding weight not found among module parameters")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write_bytes(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


@torch.no_grad()
def export_bundle(checkpoint_dir, out_dir, max_length: int | None = None) -> Path:
    """Trace ``checkpoint_dir`` into a bundle at ``out_dir`` and verify it.

    ``max_length`` is recorded in the manifest as the default truncation
    length.  It defaults to FlagReranker's default, 512 (or the position
    limit if smaller): bge-reranker-v2-m3 accepts 8192 positions, but its
    reference scores are produced at 512 unless asked otherwise.
    """
    t0 = time.time()
    ckpt = Path(checkpoint_dir).resolve()
    out = Path(out_dir).resolve()
    spm_src = ckpt / SPM_FILE
    if not (ckpt / "config.json").is_file():
        raise FileNotFoundError(f"{ckpt}: no config.json (not a HF checkpoint directory)")
    if not spm_src.is_file():
        raise FileNotFoundError(f"{ckpt}: no {SPM_FILE}; only XLM-R SentencePiece tokenizers "
                                "are supported by the engine")

    model = _load_model(ckpt)
    cfg = model.config
    sp_size = _spm_layout(spm_src)
    # HF/fairseq mapping: <s>=0 <pad>=1 </s>=2 <unk>=3, piece k>=3 -> k+1,
    # <mask> = sp_size + 1.  The embedding table may be larger, never smaller.
    if cfg.vocab_size < sp_size + 2:
        raise ValueError(f"config vocab_size {cfg.vocab_size} < sentencepiece size {sp_size} + 2")
    if (cfg.bos_token_id, cfg.pad_token_id, cfg.eos_token_id) != (0, 1, 2):
        raise ValueError("expected XLM-R special ids bos=0 pad=1 eos=2 in config, got "
                         f"{(cfg.bos_token_id, cfg.pad_token_id, cfg.eos_token_id)}")
    specials = {"bos": 0, "pad": 1, "eos": 2, "unk": 3, "mask": sp_size + 1}

    # RoBERTa position ids run from pad_token_id + 1, so two slots are lost.
    max_positions = cfg.max_position_embeddings - cfg.pad_token_id - 1
    if max_length is None:
        max_length = min(512, max_positions)
    if not 8 <= max_length <= max_positions:
        raise ValueError(f"max_length {max_length} must be in [8, {max_positions}]")

    wrapper = LogitsOnly(model).eval()
    gen = torch.Generator().manual_seed(1234)
    batch = lambda lengths: _random_batch(gen, lengths, cfg.vocab_size, 1, 0, 2, first_id=3)

    # Example with padding, so the mask arithmetic is part of the traced graph
    # exactly as it runs for padded batches.
    example = batch([11, 7])
    verbosity = transformers.logging.get_verbosity()
    # Tracing reads every module attribute, including HF's loss_function
    # property, which logs a misleading "loss_type=None" warning.
    transformers.logging.set_verbosity_error()
    try:
        traced = torch.jit.trace(wrapper, example, check_trace=False)
    finally:
        transformers.logging.set_verbosity(verbosity)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / MODEL_FILE
    # Saved under a temporary name and only renamed once verified, so a
    # failed export never leaves a model.pt that disagrees with engine.json.
    pending = out / (MODEL_FILE + ".tmp")
    torch.jit.save(traced, str(pending))

    # Verify the saved file, not the in-memory trace: it is what C++ loads.
    loaded = torch.jit.load(str(pending)).eval()
    # The graph does not depend on length, so the longest row is capped at
    # 1024: an 8192-token eager forward of a large model takes minutes on CPU.
    longest = min(max_length, 1024)
    checks = [
        [5],                                    # batch 1, no padding
        [min(37, longest), 20, 3],              # unseen length, padding
        [longest, min(64, longest), 17, 6],     # longest checked
    ]
    worst = 0.0
    for lengths in checks:
        inputs = batch(lengths)
        ref = wrapper(*inputs)
        got = loaded(*inputs)
        if got.shape != (len(lengths), cfg.num_labels) or got.dtype != torch.float32:
            raise RuntimeError(f"traced output has shape {tuple(got.shape)} {got.dtype}")
        diff = (got - ref).abs().max().item()
        worst = max(worst, diff)
        if not diff <= _TRACE_TOL:
            raise RuntimeError(f"trace verification failed for lengths {lengths}: "
                               f"max abs diff {diff:.3g} > {_TRACE_TOL}")

    emb_name = _param_name(wrapper, model.get_input_embeddings().weight)
    if emb_name not in dict(loaded.named_parameters()):
        raise RuntimeError(f"{emb_name} missing from the saved module's named_parameters()")
    os.replace(pending, model_path)

    _atomic_write_bytes(out / SPM_FILE, lambda p: shutil.copyfile(spm_src, p))
    manifest = {
        "format_version": 1,
        "family": "cross_encoder",
        "model_format": "torchscript",
        "model_file": MODEL_FILE,
        "model_sha256": _sha256(model_path),
        "architecture": {
            "model_type": cfg.model_type,
            "num_layers": cfg.num_hidden_layers,
            "hidden_size": cfg.hidden_size,
            "num_heads": cfg.num_attention_heads,
            "intermediate_size": cfg.intermediate_size,
            "num_labels": cfg.num_labels,
        },
        "vocab_size": cfg.vocab_size,
        "max_positions": max_positions,
        "max_length": max_length,
        "special_tokens": specials,
        "tokenizer": {"kind": "xlmr_sentencepiece", "file": SPM_FILE},
        "inputs": ["input_ids", "attention_mask", "token_type_ids"],
        "outputs": ["logits"],
        "dtype": "float32",
        "embedding_parameter": emb_name,
        "source": {
            "checkpoint": str(ckpt),
            "model_class": type(model).__name__,
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "tiny": (ckpt / TINY_MARKER).is_file(),
        },
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    _atomic_write_bytes(out / MANIFEST_FILE, lambda p: p.write_text(text, encoding="utf-8"))

    arch = manifest["architecture"]
    print(f"bundle: {out}")
    print(f"  model:      {type(model).__name__} ({cfg.model_type}) layers={arch['num_layers']} "
          f"hidden={arch['hidden_size']} heads={arch['num_heads']} labels={arch['num_labels']}")
    print(f"  vocab:      {cfg.vocab_size} (sentencepiece {sp_size}), mask={specials['mask']}, "
          f"max_positions={max_positions}, max_length={max_length}")
    print(f"  model.pt:   {model_path.stat().st_size / 1e6:.2f} MB sha256={manifest['model_sha256'][:16]}...")
    print(f"  embedding:  {emb_name}")
    print(f"  trace check: {len(checks)} batches, max abs diff {worst:.2e} (tol {_TRACE_TOL:g})")
    print(f"  took {time.time() - t0:.1f}s")
    return out
