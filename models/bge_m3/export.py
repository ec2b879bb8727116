"""Export BAAI/bge-m3 (dense + sparse + ColBERT embedder) to an engine bundle.

The published checkpoint directory holds an ``XLMRobertaModel`` backbone
(config.json, pytorch_model.bin, XLM-R SentencePiece tokenizer files) and two
heads stored beside it as plain ``nn.Linear`` state dicts (keys ``weight`` and
``bias``): ``sparse_linear.pt`` (H -> 1) and ``colbert_linear.pt`` (H -> H).
``write_tiny_checkpoint`` writes a small random one laid out the same way.

A bundle directory contains:
  model.pt                 TorchScript trace: (input_ids, attention_mask) int64
                           [B, T] -> (dense float32 [B, H],
                                      token_weights float32 [B, T],
                                      colbert float32 [B, T-1, H])
  sentencepiece.bpe.model  the XLM-R SentencePiece model
  engine.json              manifest read by the C++ engine

The three outputs are exactly what FlagEmbedding 1.4.2 computes before its
Python post-processing (M3Embedder.encode_single_device):
  dense          L2-normalised hidden state of <s>
  token_weights  relu(sparse_linear(h)) at every position, padding included;
                 the caller drops ``sparse_skip_ids`` and weights <= 0 and
                 keeps the max weight per token id
  colbert        L2-normalise(colbert_linear(h[:, 1:]) * mask[:, 1:]); rows of
                 padding are exactly zero, a row of n tokens keeps n - 1 vectors
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import sentencepiece as spm
import torch
import torch.nn.functional as F
import transformers
from torch import nn
from transformers import (AutoConfig, XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizer,
                          XLMRobertaTokenizerFast)

from models.common.multilingual_corpus import passage, sample_texts
from models.cross_encoder.export import (MANIFEST_FILE, MODEL_FILE, SPM_FILE, TINY_MARKER,
                                         _atomic_write_bytes, _param_name, _random_batch,
                                         _sha256, _spm_layout, _spread_weights,
                                         _train_sentencepiece)

SPARSE_FILE = "sparse_linear.pt"
COLBERT_FILE = "colbert_linear.pt"

# FlagEmbedding 1.4.2 M3Embedder: query_max_length = passage_max_length = 512
# (inference/embedder/encoder_only/m3.py:67-68).  The model accepts 8192.
DEFAULT_MAX_LENGTH = 512

_TRACE_TOL = 1e-5
# FlagEmbedding runs the backbone with SDPA attention, the trace with eager:
# same maths, different summation order.
_FLAG_TOL = 1e-4


# --------------------------------------------------------------------------
# Tiny checkpoint
# --------------------------------------------------------------------------

def write_tiny_checkpoint(out_dir, seed: int = 0, vocab_size: int = 1000, hidden: int = 32,
                          layers: int = 2, heads: int = 4, intermediate: int = 64,
                          max_positions: int = 8192) -> Path:
    """Write a small random bge-m3 look-alike: XLMRobertaModel weights as
    pytorch_model.bin, config.json, the tokenizer files and the two heads.

    ``max_positions`` defaults to bge-m3's 8192 (the position table is only
    8194 x hidden floats), so the tiny bundle has the real one's limits.
    """
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    spm_path = out / SPM_FILE
    _train_sentencepiece(spm_path, vocab_size, seed)
    sp_size = spm.SentencePieceProcessor(model_file=str(spm_path)).get_piece_size()

    config = XLMRobertaConfig(
        vocab_size=sp_size + 2, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=intermediate,
        max_position_embeddings=max_positions + 2,  # positions start at pad+1
        type_vocab_size=1, layer_norm_eps=1e-5,
        pad_token_id=1, bos_token_id=0, eos_token_id=2,
        architectures=["XLMRobertaModel"],
    )
    torch.manual_seed(seed)
    model = XLMRobertaModel(config).eval()
    _spread_weights(model, seed)
    with torch.no_grad():
        # Embedding outputs are judged by direction, and two things make a
        # random model's directions nearly input-independent (dense cosine
        # ~0.97 between unrelated texts): the single token-type row is added
        # to every token at full size, and near-uniform attention averages
        # token content away.  A small token-type row and sharper attention
        # bring it to ~0.7 (ColBERT token cosines ~0.4, ~30% of sparse
        # weights clipped to zero).
        model.embeddings.token_type_embeddings.weight.mul_(0.1)
        for layer in model.encoder.layer:
            layer.attention.self.query.weight.mul_(2.0)
            layer.attention.self.key.weight.mul_(2.0)
    # As bge-m3 ships its backbone: pytorch_model.bin.
    model.save_pretrained(out, safe_serialization=False)

    # Stored as FlagEmbedding saves them: nn.Linear state dicts (weight, bias).
    head = nn.ModuleDict({"sparse_linear": nn.Linear(hidden, 1),
                          "colbert_linear": nn.Linear(hidden, hidden)})
    _spread_weights(head, seed + 1)
    torch.save(head["sparse_linear"].state_dict(), out / SPARSE_FILE)
    torch.save(head["colbert_linear"].state_dict(), out / COLBERT_FILE)

    XLMRobertaTokenizer(vocab_file=str(spm_path), model_max_length=max_positions).save_pretrained(out)
    # tokenizer.json: BGEM3FlagModel loads the fast tokenizer via AutoTokenizer.
    XLMRobertaTokenizerFast(vocab_file=str(spm_path),
                            model_max_length=max_positions).save_pretrained(out)

    (out / TINY_MARKER).write_text(json.dumps({
        "seed": seed, "sentencepiece_size": sp_size, "hidden": hidden, "layers": layers,
        "heads": heads, "intermediate": intermediate,
        "max_positions": max_positions}, indent=2) + "\n")
    return out


# --------------------------------------------------------------------------
# Bundle export
# --------------------------------------------------------------------------

class M3Outputs(nn.Module):
    """Backbone + both heads with a plain (Tensor, Tensor) -> 3 Tensors
    signature, computing what EncoderOnlyEmbedderM3ModelForInference.forward
    returns for return_dense/return_sparse/return_colbert_vecs=True."""

    def __init__(self, backbone: nn.Module, sparse_linear: nn.Linear, colbert_linear: nn.Linear):
        super().__init__()
        self.backbone = backbone
        self.sparse_linear = sparse_linear
        self.colbert_linear = colbert_linear

    def forward(self, input_ids, attention_mask):
        # The XLM-R tokenizer emits no token_type_ids; HF then uses zeros.
        h = self.backbone(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=torch.zeros_like(input_ids))[0].float()
        dense = F.normalize(h[:, 0], dim=-1)
        token_weights = torch.relu(self.sparse_linear(h)).squeeze(-1)
        colbert = self.colbert_linear(h[:, 1:]) * attention_mask[:, 1:][:, :, None].float()
        return dense, token_weights, F.normalize(colbert, dim=-1)


def lexical_weights(token_weights, input_ids, skip_ids) -> dict[str, float]:
    """FlagEmbedding's ``_process_token_weights``: per token id (as str) the
    max weight over its positions, skipping ``skip_ids`` and weights <= 0."""
    skip = set(int(i) for i in skip_ids)
    out: dict[str, float] = {}
    for w, idx in zip(token_weights, input_ids):
        w, idx = float(w), int(idx)
        if idx not in skip and w > 0 and w > out.get(str(idx), 0.0):
            out[str(idx)] = w
    return out


def _load_head(path: Path, in_features: int, out_features: int) -> nn.Linear:
    if not path.is_file():
        # FlagEmbedding silently re-initialises missing heads at random; an
        # export must not.
        raise FileNotFoundError(f"{path}: missing (bge-m3 heads are stored beside the backbone)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    want = {"weight": (out_features, in_features), "bias": (out_features,)}
    if shapes != want:
        raise ValueError(f"{path}: expected nn.Linear state {want}, got {shapes}")
    head = nn.Linear(in_features, out_features)
    head.load_state_dict({k: v.float() for k, v in state.items()})
    return head.eval()


def load_wrapper(checkpoint_dir) -> M3Outputs:
    ckpt = Path(checkpoint_dir)
    config = AutoConfig.from_pretrained(ckpt)
    if config.model_type != "xlm-roberta":
        raise ValueError(f"{ckpt}: model_type {config.model_type!r}, expected 'xlm-roberta'")
    # eager attention: SDPA's Python-level mask shortcuts would be frozen by
    # the trace.  No pooler: bge-m3 reads the raw <s> hidden state.
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # "pooler weights not used"
    try:
        backbone = XLMRobertaModel.from_pretrained(
            ckpt, attn_implementation="eager", torchscript=True, dtype=torch.float32,
            add_pooling_layer=False).eval()
    finally:
        transformers.logging.set_verbosity(verbosity)
    hidden = config.hidden_size
    sparse = _load_head(ckpt / SPARSE_FILE, hidden, 1)
    colbert_state = ckpt / COLBERT_FILE
    colbert_dim = (torch.load(colbert_state, map_location="cpu", weights_only=True)["weight"].shape[0]
                   if colbert_state.is_file() else hidden)
    colbert = _load_head(colbert_state, hidden, colbert_dim)
    return M3Outputs(backbone, sparse, colbert).eval()


def _check_outputs(outs, lengths, mask, hidden, colbert_dim):
    dense, weights, colbert = outs
    b, t = mask.shape
    want = [(b, hidden), (b, t), (b, t - 1, colbert_dim)]
    got = [tuple(x.shape) for x in outs]
    if got != want or any(x.dtype != torch.float32 for x in outs):
        raise RuntimeError(f"traced outputs {got} {[x.dtype for x in outs]}, expected {want} float32")
    pads = colbert[mask[:, 1:] == 0]
    if pads.numel() and pads.abs().max().item() != 0.0:
        raise RuntimeError(f"colbert vectors of padding are not zero for lengths {lengths}")


@torch.no_grad()
def _compare_with_flagembedding(ckpt: Path, traced, max_length: int, skip_ids: list[int]):
    """Run BGEM3FlagModel on real text and the trace on the same token ids."""
    try:
        from FlagEmbedding import BGEM3FlagModel
    except ImportError:
        print("  FlagEmbedding not installed: reference comparison skipped")
        return None
    import random
    texts = sample_texts()[:12] + [passage(random.Random(7), sentences=40)]
    # batch_size above len(texts): no progress bars, one padded batch.
    flag = BGEM3FlagModel(str(ckpt), use_fp16=False, devices="cpu", batch_size=16)
    tok = flag.tokenizer
    flag_skip = sorted({tok.convert_tokens_to_ids(tok.special_tokens_map[k])
                        for k in ("cls_token", "eos_token", "pad_token", "unk_token")
                        if k in tok.special_tokens_map})
    if flag_skip != skip_ids:
        raise RuntimeError(f"tokenizer special ids {flag_skip} != manifest sparse_skip_ids {skip_ids}")
    length = min(max_length, 512)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()  # "fast tokenizer: use __call__ ..."
    try:
        ref = flag.encode(texts, max_length=length, return_dense=True, return_sparse=True,
                          return_colbert_vecs=True)
    finally:
        transformers.logging.set_verbosity(verbosity)
    rows = tok(texts, truncation=True, max_length=length)["input_ids"]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
        mask[i, :len(r)] = 1
    dense, weights, colbert = traced(ids, mask)
    worst = (dense - torch.from_numpy(ref["dense_vecs"])).abs().max().item()
    for i, r in enumerate(rows):
        mine = lexical_weights(weights[i, :len(r)].tolist(), r, skip_ids)
        theirs = {k: float(v) for k, v in ref["lexical_weights"][i].items()}
        for k in set(mine) | set(theirs):
            worst = max(worst, abs(mine.get(k, 0.0) - theirs.get(k, 0.0)))
        cv = torch.from_numpy(ref["colbert_vecs"][i])
        if cv.shape != (len(r) - 1, colbert.shape[-1]):
            raise RuntimeError(f"FlagEmbedding colbert shape {tuple(cv.shape)} for {len(r)} tokens")
        worst = max(worst, (colbert[i, :len(r) - 1] - cv).abs().max().item())
    if not worst <= _FLAG_TOL:
        raise RuntimeError(f"trace differs from FlagEmbedding BGEM3FlagModel by {worst:.3g} > {_FLAG_TOL}")
    return worst, len(texts), max(map(len, rows))


@torch.no_grad()
def export_bundle(checkpoint_dir, out_dir, max_length: int | None = None) -> Path:
    """Trace ``checkpoint_dir`` into a bundle at ``out_dir`` and verify it
    against the eager wrapper and, where installed, FlagEmbedding.

    ``max_length`` (manifest default truncation) defaults to FlagEmbedding
    1.4.2's M3 default of 512, capped by the position limit.
    """
    t0 = time.time()
    ckpt = Path(checkpoint_dir).resolve()
    out = Path(out_dir).resolve()
    spm_src = ckpt / SPM_FILE
    for name in ("config.json", SPM_FILE, SPARSE_FILE, COLBERT_FILE):
        if not (ckpt / name).is_file():
            raise FileNotFoundError(f"{ckpt}: no {name} (not a bge-m3 checkpoint directory)")

    wrapper = load_wrapper(ckpt)
    cfg = wrapper.backbone.config
    colbert_dim = wrapper.colbert_linear.out_features
    sp_size = _spm_layout(spm_src)
    if cfg.vocab_size < sp_size + 2:
        raise ValueError(f"config vocab_size {cfg.vocab_size} < sentencepiece size {sp_size} + 2")
    if (cfg.bos_token_id, cfg.pad_token_id, cfg.eos_token_id) != (0, 1, 2):
        raise ValueError("expected XLM-R special ids bos=0 pad=1 eos=2 in config, got "
                         f"{(cfg.bos_token_id, cfg.pad_token_id, cfg.eos_token_id)}")
    specials = {"bos": 0, "pad": 1, "eos": 2, "unk": 3, "mask": sp_size + 1}
    # FlagEmbedding drops cls (= <s>), eos, pad and unk from lexical weights.
    skip_ids = sorted({specials["bos"], specials["eos"], specials["pad"], specials["unk"]})

    max_positions = cfg.max_position_embeddings - cfg.pad_token_id - 1
    if max_length is None:
        max_length = min(DEFAULT_MAX_LENGTH, max_positions)
    if not 8 <= max_length <= max_positions:
        raise ValueError(f"max_length {max_length} must be in [8, {max_positions}]")

    gen = torch.Generator().manual_seed(1234)
    batch = lambda lengths: _random_batch(gen, lengths, cfg.vocab_size, 1, 0, 2, first_id=3)[:2]
    example = batch([11, 7])
    verbosity = transformers.logging.get_verbosity()
    # Tracing reads HF's loss_function property, which logs a misleading
    # "loss_type=None" warning.
    transformers.logging.set_verbosity_error()
    try:
        traced = torch.jit.trace(wrapper, example, check_trace=False)
    finally:
        transformers.logging.set_verbosity(verbosity)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / MODEL_FILE
    pending = out / (MODEL_FILE + ".tmp")
    torch.jit.save(traced, str(pending))

    loaded = torch.jit.load(str(pending)).eval()
    longest = min(max_length, 1024)
    checks = [[5], [min(37, longest), 20, 3], [longest, min(64, longest), 17, 6], [2, 2]]
    worst = 0.0
    for lengths in checks:
        inputs = batch(lengths)
        ref = wrapper(*inputs)
        got = loaded(*inputs)
        _check_outputs(got, lengths, inputs[1], cfg.hidden_size, colbert_dim)
        diff = max((g - r).abs().max().item() for g, r in zip(got, ref))
        worst = max(worst, diff)
        if not diff <= _TRACE_TOL:
            raise RuntimeError(f"trace verification failed for lengths {lengths}: "
                               f"max abs diff {diff:.3g} > {_TRACE_TOL}")
    flag = _compare_with_flagembedding(ckpt, loaded, max_length, skip_ids)

    emb_name = _param_name(wrapper, wrapper.backbone.get_input_embeddings().weight)
    if emb_name not in dict(loaded.named_parameters()):
        raise RuntimeError(f"{emb_name} missing from the saved module's named_parameters()")
    os.replace(pending, model_path)

    _atomic_write_bytes(out / SPM_FILE, lambda p: shutil.copyfile(spm_src, p))
    manifest = {
        "format_version": 1,
        "family": "bge_m3",
        "model_format": "torchscript",
        "model_file": MODEL_FILE,
        "model_sha256": _sha256(model_path),
        "architecture": {
            "model_type": cfg.model_type,
            "num_layers": cfg.num_hidden_layers,
            "hidden_size": cfg.hidden_size,
            "num_heads": cfg.num_attention_heads,
            "intermediate_size": cfg.intermediate_size,
        },
        "vocab_size": cfg.vocab_size,
        "max_positions": max_positions,
        "max_length": max_length,
        "special_tokens": specials,
        "sparse_skip_ids": skip_ids,
        "tokenizer": {"kind": "xlmr_sentencepiece", "file": SPM_FILE},
        "inputs": ["input_ids", "attention_mask"],
        "outputs": ["dense", "token_weights", "colbert"],
        "dtype": "float32",
        "embedding_parameter": emb_name,
        "source": {
            "checkpoint": str(ckpt),
            "model_class": type(wrapper.backbone).__name__,
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "tiny": (ckpt / TINY_MARKER).is_file(),
        },
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    _atomic_write_bytes(out / MANIFEST_FILE, lambda p: p.write_text(text, encoding="utf-8"))

    arch = manifest["architecture"]
    print(f"bundle: {out}")
    print(f"  model:      bge-m3 ({cfg.model_type}) layers={arch['num_layers']} "
          f"hidden={arch['hidden_size']} heads={arch['num_heads']} colbert_dim={colbert_dim}")
    print(f"  vocab:      {cfg.vocab_size} (sentencepiece {sp_size}), "
          f"max_positions={max_positions}, max_length={max_length}, sparse_skip_ids={skip_ids}")
    print(f"  model.pt:   {model_path.stat().st_size / 1e6:.2f} MB sha256={manifest['model_sha256'][:16]}...")
    print(f"  trace check: {len(checks)} batches, max abs diff {worst:.2e} (tol {_TRACE_TOL:g})")
    if flag is not None:
        print(f"  FlagEmbedding check: {flag[1]} texts (up to {flag[2]} tokens), "
              f"max abs diff {flag[0]:.2e} (tol {_FLAG_TOL:g})")
    print(f"  took {time.time() - t0:.1f}s")
    return out
