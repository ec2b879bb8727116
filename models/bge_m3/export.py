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

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (AutoConfig, XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizer,
                          XLMRobertaTokenizerFast)

from models.common.bundle import embedding_scale_name
from models.common.bundle import (TRACE_TOL, atomic_copy, check_lengths, compare_with_eager,
                                  dtype_fields, encoder_architecture, manifest_header,
                                  quiet_transformers, random_batch, resolve_max_length,
                                  save_verified_trace, source_block, spread_weights,
                                  write_manifest, write_tiny_marker, xlmr_max_positions,
                                  xlmr_special_ids)
from models.common.multilingual_corpus import passage, sample_texts
from models.common.sentencepiece_training import (XLMR_SPM_FILE, check_xlmr_layout,
                                                  train_xlmr_sentencepiece)

SPM_FILE = XLMR_SPM_FILE

SPARSE_FILE = "sparse_linear.pt"
COLBERT_FILE = "colbert_linear.pt"

# FlagEmbedding 1.4.2 M3Embedder: query_max_length = passage_max_length = 512
# (inference/embedder/encoder_only/m3.py:67-68).  The model accepts 8192.
DEFAULT_MAX_LENGTH = 512

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
    sp_size = train_xlmr_sentencepiece(spm_path, vocab_size, seed)

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
    spread_weights(model, seed)
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
    spread_weights(head, seed + 1)
    torch.save(head["sparse_linear"].state_dict(), out / SPARSE_FILE)
    torch.save(head["colbert_linear"].state_dict(), out / COLBERT_FILE)

    XLMRobertaTokenizer(vocab_file=str(spm_path), model_max_length=max_positions).save_pretrained(out)
    # tokenizer.json: BGEM3FlagModel loads the fast tokenizer via AutoTokenizer.
    XLMRobertaTokenizerFast(vocab_file=str(spm_path),
                            model_max_length=max_positions).save_pretrained(out)

    write_tiny_marker(out, {
        "seed": seed, "sentencepiece_size": sp_size, "hidden": hidden, "layers": layers,
        "heads": heads, "intermediate": intermediate, "max_positions": max_positions})
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
        # The XLM-R tokenizer emits no token_type_ids; HF then uses zeros. The heads run in the
        # model's dtype (fp32, or the dtype of tools/export.py --dtype); the outputs are fp32.
        h = self.backbone(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=torch.zeros_like(input_ids))[0]
        dense = F.normalize(h[:, 0].float(), dim=-1)
        token_weights = torch.relu(self.sparse_linear(h)).squeeze(-1).float()
        colbert = (self.colbert_linear(h[:, 1:]).float()
                   * attention_mask[:, 1:][:, :, None].float())
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
    # SDPA attention: while tracing, transformers keeps the padded 4D mask in
    # the graph (its all-ones shortcut is skipped), so the trace is valid for
    # every batch (models/cross_encoder/export.py, docs/speed.md).  No pooler:
    # bge-m3 reads the raw <s> hidden state.
    with quiet_transformers():  # "pooler weights not used"
        backbone = XLMRobertaModel.from_pretrained(
            ckpt, attn_implementation="sdpa", torchscript=True, dtype=torch.float32,
            add_pooling_layer=False).eval()
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
    with quiet_transformers():  # "fast tokenizer: use __call__ ..."
        ref = flag.encode(texts, max_length=length, return_dense=True, return_sparse=True,
                          return_colbert_vecs=True)
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
def export_bundle(checkpoint_dir, out_dir, max_length: int | None = None,
                  dtype: str = "fp32", model_format: str = "torchscript") -> Path:
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
    sp_size = check_xlmr_layout(spm_src)
    specials = xlmr_special_ids(cfg, sp_size)
    # FlagEmbedding drops cls (= <s>), eos, pad and unk from lexical weights.
    skip_ids = sorted({specials["bos"], specials["eos"], specials["pad"], specials["unk"]})
    max_positions = xlmr_max_positions(cfg)
    max_length = resolve_max_length(max_length, min(DEFAULT_MAX_LENGTH, max_positions),
                                    max_positions)

    gen = torch.Generator().manual_seed(1234)
    batch = lambda lengths: random_batch(gen, lengths, cfg.vocab_size, 1, 0, 2, first_id=3)[:2]
    # [2, 2]: rows of <s></s> alone, whose ColBERT output is one vector each.
    checks = check_lengths(max_length) + [[2, 2]]
    check_output = lambda got, lengths, inputs: _check_outputs(got, lengths, inputs[1],
                                                               cfg.hidden_size, colbert_dim)

    def verify(loaded):
        worst = compare_with_eager(loaded, wrapper, batch, checks, check_output)
        # FlagEmbedding runs fp32 or fp16, so a bf16 graph is checked against its own eager
        # model only; its fp32 export is the one compared with FlagEmbedding.
        if dtype != "fp32":
            return worst, None
        return worst, _compare_with_flagembedding(ckpt, loaded, max_length, skip_ids)

    model_path, emb_name, (worst, flag) = save_verified_trace(
        wrapper, batch([11, 7]), out, verify, wrapper.backbone.get_input_embeddings().weight,
        dtype=dtype, model_format=model_format)

    atomic_copy(spm_src, out / SPM_FILE)
    manifest = {
        **manifest_header("bge_m3", model_path),
        "architecture": encoder_architecture(cfg),
        "vocab_size": cfg.vocab_size,
        "max_positions": max_positions,
        "max_length": max_length,
        "special_tokens": specials,
        "sparse_skip_ids": skip_ids,
        "tokenizer": {"kind": "xlmr_sentencepiece", "file": SPM_FILE},
        "inputs": ["input_ids", "attention_mask"],
        "outputs": ["dense", "token_weights", "colbert"],
        **dtype_fields(dtype),
        "embedding_parameter": emb_name,
        "embedding_scale": embedding_scale_name(emb_name),
        "source": source_block(ckpt, model_class=type(wrapper.backbone).__name__),
    }
    write_manifest(out, manifest)

    arch = manifest["architecture"]
    print(f"bundle: {out}")
    print(f"  model:      bge-m3 ({cfg.model_type}) layers={arch['num_layers']} "
          f"hidden={arch['hidden_size']} heads={arch['num_heads']} colbert_dim={colbert_dim}")
    print(f"  vocab:      {cfg.vocab_size} (sentencepiece {sp_size}), "
          f"max_positions={max_positions}, max_length={max_length}, sparse_skip_ids={skip_ids}")
    print(f"  {model_path.name}:   {model_path.stat().st_size / 1e6:.2f} MB sha256={manifest['model_sha256'][:16]}...")
    print(f"  trace check: {len(checks)} batches, max abs diff {worst:.2e} (tol {TRACE_TOL:g})")
    if flag is not None:
        print(f"  FlagEmbedding check: {flag[1]} texts (up to {flag[2]} tokens), "
              f"max abs diff {flag[0]:.2e} (tol {_FLAG_TOL:g})")
    print(f"  took {time.time() - t0:.1f}s")
    return out
