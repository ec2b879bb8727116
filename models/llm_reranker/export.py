"""Export decoder-only 'Yes'-logit rerankers to an engine bundle.

Supported checkpoints: BAAI/bge-reranker-v2-gemma (GemmaForCausalLM with the
Gemma SentencePiece BPE tokenizer, scored by FlagEmbedding's FlagLLMReranker
as the logit of the 'Yes' token at the last position), plus a tiny random
checkpoint of the same architecture for tests (``write_tiny_checkpoint``).

A bundle directory contains:
  model.pt         TorchScript trace: (input_ids, attention_mask) int64 [B, T]
                   -> score float32 [B], the 'Yes' logit at each row's last
                   real token.  Left and right padding give the same score.
  tokenizer.model  the Gemma SentencePiece model (ids used as they are)
  engine.json      manifest read by the C++ engine (prompt, separator, ids)
"""

from __future__ import annotations

import time
from pathlib import Path

import sentencepiece as spm
import torch
from torch import nn
from transformers import (AutoConfig, AutoTokenizer, GemmaConfig, GemmaForCausalLM,
                          GemmaTokenizer, GemmaTokenizerFast)

from models.common.bundle import embedding_scale_name
from models.common.bundle import (DTYPES, TRACE_TOL, atomic_copy, dtype_fields, hf_checkpoint_dir,
                                  manifest_header, save_verified_trace, source_block,
                                  write_manifest, write_tiny_marker)
from models.llm_reranker.tokenizer import (DEFAULT_PROMPT, PASSAGE_PREFIX, QUERY_PREFIX,
                                           SEPARATOR, check_gemma_layout,
                                           train_gemma_sentencepiece)

SPM_FILE = "tokenizer.model"

_SUPPORTED_TYPES = {"gemma"}
# FlagLLMReranker defaults (FlagEmbedding 1.4.2 decoder_only/base.py:220,297).
FLAG_MAX_LENGTH = 512


# --------------------------------------------------------------------------
# Tiny checkpoint
# --------------------------------------------------------------------------

@torch.no_grad()
def _spread_gemma_weights(model: nn.Module, seed: int) -> None:
    """Redraw parameters so the tiny model's scores clearly depend on input
    (Gemma's counterpart of ``models.common.bundle.spread_weights``).

    Gemma's RMSNorm multiplies by (1 + weight), so norms get small noise
    around 0.  Embeddings are scaled by sqrt(hidden) in the forward, so they
    are drawn with std 1/sqrt(hidden); the tied lm_head then yields O(1)
    logits.  Linear weights are fan-in scaled.
    """
    gen = torch.Generator().manual_seed(seed)
    hidden = model.config.hidden_size
    for name, p in model.named_parameters():
        noise = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        if name.endswith("norm.weight"):
            p.copy_(0.1 * noise)
        elif "embed_tokens" in name:
            p.copy_(noise / hidden ** 0.5)
        elif p.ndim == 2:
            p.copy_(noise / p.shape[1] ** 0.5)
        else:
            p.copy_(0.1 * noise)


def write_tiny_checkpoint(out_dir, seed: int = 0, vocab_size: int = 2000, hidden: int = 64,
                          layers: int = 2, heads: int = 4, kv_heads: int = 1, head_dim: int = 16,
                          intermediate: int = 128, max_positions: int = 1024) -> Path:
    """Write a small random GemmaForCausalLM checkpoint laid out like the
    published bge-reranker-v2-gemma (config.json, model.safetensors,
    tokenizer.model, tokenizer.json, tokenizer_config.json,
    special_tokens_map.json).  One kv head: multi-query, like gemma-2b."""
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    spm_path = out / SPM_FILE
    sp_size = train_gemma_sentencepiece(spm_path, vocab_size, seed)

    config = GemmaConfig(
        vocab_size=sp_size, hidden_size=hidden, intermediate_size=intermediate,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv_heads,
        head_dim=head_dim, max_position_embeddings=max_positions,
        pad_token_id=0, eos_token_id=1, bos_token_id=2, tie_word_embeddings=True,
        architectures=["GemmaForCausalLM"],
    )
    torch.manual_seed(seed)
    model = GemmaForCausalLM(config).eval()
    _spread_gemma_weights(model, seed)
    model.save_pretrained(out, safe_serialization=True)

    # Slow first, then fast: the fast one's tokenizer_config.json wins, and
    # tokenizer.json (converted from the slow model, as for the published
    # Gemma) is what AutoTokenizer, hence FlagLLMReranker, loads.
    GemmaTokenizer(vocab_file=str(spm_path), model_max_length=max_positions).save_pretrained(out)
    fast = GemmaTokenizerFast(vocab_file=str(spm_path), model_max_length=max_positions)
    fast.save_pretrained(out)

    write_tiny_marker(out, {
        "seed": seed, "sentencepiece_size": sp_size, "hidden": hidden, "layers": layers,
        "heads": heads, "kv_heads": kv_heads, "head_dim": head_dim,
        "intermediate": intermediate, "max_positions": max_positions})
    return out


# --------------------------------------------------------------------------
# Bundle export
# --------------------------------------------------------------------------

class YesLogit(nn.Module):
    """Decoder body + the single 'Yes' row of the LM head.

    Position ids come from the mask (cumsum - 1, clamped at 0), the attention
    bias is built here (causal AND key-not-padding) and passed as a 4D mask,
    so no HF mask helper makes Python decisions on the example inputs.  Only
    hidden[b, last_real_b] . W[yes] is computed: no [B, T, vocab] logits.
    """

    def __init__(self, body: nn.Module, yes_row: torch.Tensor, yes_bias: float | None,
                 softcap: float | None):
        super().__init__()
        self.body = body
        self.register_buffer("yes_row", yes_row.detach().clone().float())
        self.yes_bias = yes_bias
        self.softcap = softcap

    def forward(self, input_ids, attention_mask):
        mask = attention_mask.to(torch.long)
        # arange(device=x.device) would freeze the tracing device into the
        # graph; a cumsum of ones follows the input to CPU or CUDA.
        steps = torch.ones_like(mask[0]).cumsum(0) - 1
        position_ids = (mask.cumsum(1) - 1).clamp(min=0)
        keep = (steps[None, :] <= steps[:, None])[None, None] & (mask[:, None, None, :] > 0)
        dtype = self.body.embed_tokens.weight.dtype
        bias = torch.zeros_like(keep, dtype=dtype).masked_fill(~keep, torch.finfo(dtype).min)
        hidden = self.body(input_ids=input_ids, attention_mask=bias,
                           position_ids=position_ids, use_cache=False)[0]
        last = (mask * steps[None, :]).amax(dim=1)        # last real position, any padding
        rows = torch.ones_like(last).cumsum(0) - 1
        score = hidden[rows, last].float() @ self.yes_row.float()  # in bf16/fp16 bundles too
        if self.yes_bias is not None:
            score = score + self.yes_bias
        if self.softcap is not None:
            score = torch.tanh(score / self.softcap) * self.softcap
        return score


class _DeviceNeutralRope(nn.Module):
    """HF's Gemma rotary embedding computes ``inv_freq.to(x.device)``, which a
    trace records as a constant device (the tracing one), so the module
    could not move to CUDA.  Same values: freqs = position * inv_freq (HF's
    k=1 matmul is the same single product), cos/sin of [freqs, freqs]."""

    def __init__(self, rope: nn.Module):
        super().__init__()
        if getattr(rope, "rope_type", "default") != "default":
            # Dynamic/scaled variants update inv_freq per call in HF.
            raise ValueError(f"rope_type {rope.rope_type!r} is not supported")
        self.register_buffer("inv_freq", rope.inv_freq.detach().clone())
        self.attention_scaling = float(rope.attention_scaling)

    def forward(self, x, position_ids):
        freqs = position_ids[:, :, None].float() * self.inv_freq.float()[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos() * self.attention_scaling
        sin = emb.sin() * self.attention_scaling
        return cos.to(x.dtype), sin.to(x.dtype)


def _load(ckpt: Path):
    config = AutoConfig.from_pretrained(ckpt)
    if config.model_type not in _SUPPORTED_TYPES:
        raise ValueError(f"{ckpt}: model_type {config.model_type!r} is not supported "
                         f"({sorted(_SUPPORTED_TYPES)})")
    # eager attention: SDPA picks kernels/mask shortcuts from Python
    # conditions on the example inputs, which a trace would freeze.
    model = GemmaForCausalLM.from_pretrained(ckpt, attn_implementation="eager",
                                             dtype=torch.float32).eval()
    # The tokenizer FlagLLMReranker uses (AutoTokenizer: the fast one when
    # tokenizer.json exists).
    tok = AutoTokenizer.from_pretrained(ckpt)
    return model, tok


def _pad(rows: list[torch.Tensor], side: str, pad_id: int):
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        sl = slice(0, len(r)) if side == "right" else slice(width - len(r), width)
        ids[i, sl] = r
        mask[i, sl] = 1
    return ids, mask


@torch.no_grad()
def _hf_yes_logits(model, hf_rope, ids, mask, yes_id):
    """The eager HF model's logits[b, last_real_b, yes_id] with explicit
    position ids; logits_to_keep limits the LM head to the needed positions
    (full vocabulary rows), which keeps a 256k-vocab check in memory."""
    position_ids = (mask.cumsum(1) - 1).clamp(min=0)
    last = (mask * torch.arange(ids.size(1))).amax(dim=1)
    keep = torch.unique(last)
    neutral, model.model.rotary_emb = model.model.rotary_emb, hf_rope
    try:
        logits = model(input_ids=ids, attention_mask=mask, position_ids=position_ids,
                       use_cache=False, logits_to_keep=keep).logits
    finally:
        model.model.rotary_emb = neutral
    col = torch.searchsorted(keep, last)
    return logits[torch.arange(ids.size(0)), col, yes_id].float()


@torch.no_grad()
def export_bundle(checkpoint_dir, out_dir, max_length: int | None = None,
                  dtype: str = "fp32", model_format: str = "torchscript") -> Path:
    """Trace ``checkpoint_dir`` into a bundle at ``out_dir`` and verify it.

    ``max_length`` is FlagLLMReranker's max_length (default 512): the query
    ("A: " + query) is cut to max_length * 3 // 4 tokens, the passage
    ("B: " + passage) to max_length, then the passage is cut further so that
    bos + query + sep + passage <= max_length + len(prompt).
    """
    t0 = time.time()
    ckpt = hf_checkpoint_dir(checkpoint_dir)
    out = Path(out_dir).resolve()
    spm_src = ckpt / SPM_FILE
    if not spm_src.is_file():
        raise FileNotFoundError(f"{ckpt}: no {SPM_FILE} (Gemma SentencePiece model)")
    specials = check_gemma_layout(spm_src)

    model, tok = _load(ckpt)
    cfg = model.config
    hf_specials = {"bos": tok.bos_token_id, "eos": tok.eos_token_id, "pad": tok.pad_token_id,
                   "unk": tok.unk_token_id}
    if hf_specials != specials:
        raise ValueError(f"HF tokenizer specials {hf_specials} != tokenizer.model {specials}")
    ids_of = lambda text: tok(text, add_special_tokens=False)["input_ids"]
    yes_id = ids_of("Yes")[0]  # exactly FlagLLMReranker's lookup (base.py:258)
    prompt_ids, sep_ids = ids_of(DEFAULT_PROMPT), ids_of(SEPARATOR)
    sp_yes = spm.SentencePieceProcessor(model_file=str(spm_src)).encode("Yes")
    if sp_yes[:1] != [yes_id]:
        raise ValueError(f"'Yes' is {yes_id} for the HF tokenizer but {sp_yes} for sentencepiece")

    max_positions = cfg.max_position_embeddings
    if max_length is None:
        max_length = FLAG_MAX_LENGTH
    # Longest sequence FlagLLMReranker builds: bos + q + sep + p is cut to
    # max_length + |sep| + |prompt|, then sep + prompt are appended.
    max_sequence = max_length + 2 * len(sep_ids) + 2 * len(prompt_ids)
    if max_length < 8:
        raise ValueError(f"max_length {max_length} must be at least 8")
    if max_sequence > max_positions:
        raise ValueError(f"max_length {max_length}: sequences reach {max_sequence} tokens, "
                         f"model has {max_positions} positions")

    lm_head = model.get_output_embeddings()
    yes_bias = None if lm_head.bias is None else float(lm_head.bias[yes_id])
    softcap = getattr(cfg, "final_logit_softcapping", None)
    wrapper = YesLogit(model.model, lm_head.weight[yes_id], yes_bias, softcap).eval()
    # model.model is shared with the HF reference below; _hf_yes_logits puts
    # HF's own rotary embedding back while it runs.
    hf_rope = model.model.rotary_emb
    model.model.rotary_emb = _DeviceNeutralRope(hf_rope)

    gen = torch.Generator().manual_seed(1234)
    def rows(lengths):  # <bos> + random ordinary pieces
        out_rows = []
        for n in lengths:
            r = torch.randint(4, cfg.vocab_size, (n,), generator=gen)
            r[0] = specials["bos"]
            out_rows.append(r)
        return out_rows

    # Verify the saved file against (1) the eager HF model's LM-head logits
    # (full vocabulary rows, explicit position ids), (2) the eager wrapper,
    # (3) the same rows unpadded one by one; each padded batch both ways.
    # A 2B model on CPU is slow, so its longest checked row is shorter.
    n_params = sum(p.numel() for p in model.parameters())
    longest = min(max_sequence, 1024 if n_params < 1e8 else 128)

    shape_tol = TRACE_TOL if dtype == "fp32" else 4 * torch.finfo(DTYPES[dtype][1]).eps

    def verify(loaded):
        worst = {"vs_hf": 0.0, "vs_eager": 0.0, "vs_unpadded": 0.0}
        for lengths in ([9, 9], [37, 20, 3], [longest, 64, 17, 6]):
            batch_rows = rows(lengths)
            alone = torch.cat([loaded(*_pad([r], "right", 0)) for r in batch_rows])
            for side in ("right", "left") if len(set(lengths)) > 1 else ("right",):
                ids, mask = _pad(batch_rows, side, specials["pad"])
                got = loaded(ids, mask)
                if got.shape != (len(lengths),) or got.dtype != torch.float32:
                    raise RuntimeError(f"traced output has shape {tuple(got.shape)} {got.dtype}")
                ref = _hf_yes_logits(model, hf_rope, ids, mask, yes_id)
                if softcap is not None:
                    ref = torch.tanh(ref / softcap) * softcap  # HF applies it after the head
                # Same graph: exact up to float noise.  Different kernels or GEMM
                # shapes (full LM head, batch of one): 1e-5 relative to logits > 1 in
                # fp32, a few rounding steps of the dtype in bf16 or fp16.
                scaled = shape_tol * max(1.0, ref.abs().max().item())
                eager = wrapper(ids, mask)
                for key, other, tol in (("vs_hf", ref, scaled), ("vs_eager", eager, TRACE_TOL),
                                        ("vs_unpadded", alone, scaled)):
                    diff = (got - other).abs().max().item()
                    worst[key] = max(worst[key], diff)
                    if not diff <= tol:
                        raise RuntimeError(f"verification {key} failed for {side}-padded "
                                           f"lengths {lengths}: max abs diff {diff:.3g} > "
                                           f"{tol:.3g}")
        return worst

    # Gemma's sqrt(hidden) embedding scale is a torch.tensor constant, which
    # the tracer warns about.
    model_path, emb_name, worst = save_verified_trace(
        wrapper, _pad(rows([11, 7]), "right", specials["pad"]), out, verify,
        model.get_input_embeddings().weight, ignore_tracer_warnings=True, dtype=dtype,
        model_format=model_format)
    atomic_copy(spm_src, out / SPM_FILE)

    manifest = {
        **manifest_header("llm_reranker", model_path),
        "architecture": {
            "model_type": cfg.model_type,
            "num_layers": cfg.num_hidden_layers,
            "hidden_size": cfg.hidden_size,
            "num_heads": cfg.num_attention_heads,
            "num_kv_heads": cfg.num_key_value_heads,
            "head_dim": cfg.head_dim,
            "intermediate_size": cfg.intermediate_size,
        },
        "vocab_size": cfg.vocab_size,
        "max_positions": max_positions,
        "max_length": max_length,
        "query_max_length": max_length * 3 // 4,
        "max_sequence_length": max_sequence,
        "special_tokens": specials,
        "tokenizer": {"kind": "gemma_sentencepiece", "file": SPM_FILE, "add_bos": True},
        "yes_token_id": yes_id,
        "prompt": DEFAULT_PROMPT,
        "separator": SEPARATOR,
        "query_prefix": QUERY_PREFIX,
        "passage_prefix": PASSAGE_PREFIX,
        # The HF tokenizer's ids for the fixed strings, for C++ to check.
        "prompt_ids": prompt_ids,
        "separator_ids": sep_ids,
        "inputs": ["input_ids", "attention_mask"],
        "outputs": ["score"],
        **dtype_fields(dtype),
        "embedding_parameter": emb_name,
        "embedding_scale": embedding_scale_name(emb_name),
        "source": source_block(ckpt, model_class=type(model).__name__,
                               tokenizer_class=type(tok).__name__,
                               padding_side=tok.padding_side),
    }
    write_manifest(out, manifest)

    arch = manifest["architecture"]
    print(f"bundle: {out}")
    print(f"  model:      {type(model).__name__} ({cfg.model_type}) layers={arch['num_layers']} "
          f"hidden={arch['hidden_size']} heads={arch['num_heads']}/{arch['num_kv_heads']}kv "
          f"head_dim={arch['head_dim']} params={n_params / 1e6:.2f}M")
    print(f"  vocab:      {cfg.vocab_size}, yes={yes_id} ({tok.convert_ids_to_tokens(yes_id)!r}), "
          f"prompt={len(prompt_ids)} tokens, sep={sep_ids}")
    print(f"  lengths:    max_length={max_length} query_max={max_length * 3 // 4} "
          f"max_sequence={max_sequence} max_positions={max_positions}")
    print(f"  {model_path.name}:   {model_path.stat().st_size / 1e6:.2f} MB "
          f"sha256={manifest['model_sha256'][:16]}...")
    print("  checks:     " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items())
          + f" (tol {TRACE_TOL:g}; longest row {longest})")
    print(f"  took {time.time() - t0:.1f}s")
    return out
