"""Export decoder-only LLM rerankers to an engine bundle.

Supported checkpoints, by config.json's model_type (a *ForCausalLM with its tokenizer):
  gemma / gemma2   BAAI/bge-reranker-v2-gemma, scored as FlagEmbedding's FlagLLMReranker (the
                   logit of 'Yes'); Gemma's tokenizer.model (SentencePiece BPE)
  qwen3            Qwen/Qwen3-Reranker-0.6B/4B/8B, as its model card scores (P(yes) from the
                   'yes' and 'no' logits); tokenizer.json (byte-level BPE)
  qwen2            mixedbread-ai/mxbai-rerank-base/large-v2, as mxbai-rerank's MxbaiRerankV2
                   scores (logit of '1' minus that of '0'); tokenizer.json
  minicpm          BAAI/bge-reranker-v2-minicpm-layerwise, scored as FlagEmbedding's
                   LayerWiseFlagLLMReranker (the score head of the cutoff layer, --cutoff-layer;
                   its model code, LayerWiseMiniCPMForCausalLM, ships inside FlagEmbedding);
                   tokenizer.json (a Llama SentencePiece BPE)
  llama / mistral  with --kind naming the template its reference uses
How each writes a pair and reads its score is data (models/llm_reranker/templates.py), written
into the manifest's ``template`` and ``score`` blocks; ``--kind`` picks another template than the
model_type's default. Tiny random checkpoints of each architecture: ``write_tiny_checkpoint``.

A bundle directory contains:
  model.pt         TorchScript trace: (input_ids, attention_mask) int64 [B, T]
                   -> logits float32 [B, K], the logits of the score's K tokens (or the cutoff
                   layer's score head, K = 1) at each row's last real token.  Rows are padded on
                   the right (engine.json "padding"), as the engine pads them; decoders whose
                   attention transformers writes (Gemma 2) take either side.
  tokenizer.model or tokenizer.json
  engine.json      manifest read by the C++ engine (template, score rule, ids)
"""

from __future__ import annotations

import time
from pathlib import Path

import sentencepiece as spm
import torch
from torch import nn
from transformers import (AutoConfig, AutoModelForCausalLM, AutoTokenizer, GemmaConfig,
                          GemmaForCausalLM, GemmaTokenizer, GemmaTokenizerFast)

from models.common.bundle import embedding_scale_name, encoder_architecture, spread_weights
from models.common.json_files import read_json
from models.common.bundle import (DTYPES, TRACE_TOL, atomic_copy, dtype_fields, hf_checkpoint_dir,
                                  manifest_header, save_verified_trace, source_block,
                                  write_manifest, write_tiny_marker)
from models.common.checkpoint_family import LLM_RERANKER_TYPES
from models.common.tokenizer_files import bundle_tokenizer
from models.llm_reranker import prefix_reuse
from models.llm_reranker.templates import DEFAULT_TEMPLATE, TEMPLATES, manifest_blocks
from models.llm_reranker.tokenizer import (check_gemma_layout, train_gemma_sentencepiece,
                                           train_llama_sentencepiece)

SPM_FILE = "tokenizer.model"

# Decoders whose transformers class the exporter traces; each needs a template (--kind) unless
# DEFAULT_TEMPLATE names one for it.
_SUPPORTED_TYPES = set(LLM_RERANKER_TYPES)
# The --kind values: the templates.
KINDS = tuple(TEMPLATES)
# A Qwen3-Reranker-0.6B-shaped random checkpoint (config.json of the published model, random
# weights, the tiny tokenizer): for the speed measurements of docs/speed.md.
TINY_SHAPES = {"qwen3-0.6b": dict(architecture="qwen3", hidden=1024, layers=28, heads=16,
                                  kv_heads=8, head_dim=128, intermediate=3072,
                                  max_positions=40960),
               # mxbai-rerank-base-v2 (Qwen2-0.5B's layers and widths).
               "mxbai-rerank-base-v2": dict(architecture="qwen2", hidden=896, layers=24,
                                            heads=14, kv_heads=2, head_dim=64, intermediate=4864,
                                            max_positions=32768),
               # bge-reranker-v2-minicpm-layerwise's widths (MiniCPM-2B: 2304 wide, 36 heads,
               # 5760 intermediate) with 12 of its 40 layers, for a CPU benchmark.
               "minicpm-layerwise-12-layers": dict(architecture="minicpm", hidden=2304,
                                                   layers=12, heads=36, intermediate=5760,
                                                   max_positions=2048)}


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


def write_tiny_checkpoint(out_dir, seed: int = 0, architecture: str = "gemma",
                          vocab_size: int = 2000, hidden: int = 64, layers: int = 2,
                          heads: int = 4, kv_heads: int = 1, head_dim: int = 16,
                          intermediate: int = 128, max_positions: int = 1024) -> Path:
    """Write a small random *ForCausalLM checkpoint of ``architecture``: gemma laid out like the
    published bge-reranker-v2-gemma (config.json, model.safetensors, tokenizer.model,
    tokenizer.json, tokenizer_config.json, special_tokens_map.json; one kv head: multi-query,
    like gemma-2b); qwen3 like Qwen3-Reranker and qwen2 like mxbai-rerank-v2 (tokenizer.json,
    byte-level BPE trained on the spot, 'yes', 'no', '0' and '1' whole tokens); minicpm like
    bge-reranker-v2-minicpm-layerwise (FlagEmbedding's LayerWiseMiniCPMForCausalLM, a score head
    per layer from ``start_layer`` on, a Llama SentencePiece tokenizer)."""
    if architecture == "minicpm":
        return _write_tiny_minicpm(out_dir, seed, vocab_size, hidden, layers, heads, intermediate,
                                   max_positions)
    if architecture in ("qwen3", "qwen2"):
        return _write_tiny_qwen(out_dir, seed, architecture, hidden, layers, heads, kv_heads,
                                head_dim, intermediate, max_positions)
    if architecture != "gemma":
        raise ValueError(f"architecture {architecture!r} is not one of gemma, qwen3, qwen2, "
                         "minicpm")
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


def _write_tiny_qwen(out_dir, seed: int, architecture: str, hidden: int, layers: int, heads: int,
                     kv_heads: int, head_dim: int, intermediate: int, max_positions: int) -> Path:
    from models.common.tiny_encoders import tiny_config  # noqa: PLC0415

    out = Path(out_dir).resolve()
    extra = {"head_dim": head_dim} if architecture == "qwen3" else {}
    config = tiny_config(architecture, out, hidden=hidden, layers=layers, heads=heads,
                         max_positions=max_positions, appends_eos=False,
                         intermediate_size=intermediate,
                         num_key_value_heads=kv_heads, architectures=[
                             "Qwen3ForCausalLM" if architecture == "qwen3" else
                             "Qwen2ForCausalLM"], **extra)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config).eval()
    spread_weights(model, seed)
    model.save_pretrained(out, safe_serialization=True)
    write_tiny_marker(out, {"seed": seed, "architecture": architecture, "hidden": hidden,
                            "layers": layers, "heads": heads, "kv_heads": kv_heads,
                            "head_dim": config.head_dim if hasattr(config, "head_dim") else None,
                            "intermediate": intermediate, "max_positions": max_positions})
    return out


# The published bge-reranker-v2-minicpm-layerwise: its config.json names FlagEmbedding's classes
# (shipped beside it as remote code; FlagEmbedding loads its own copy).
MINICPM_AUTO_MAP = {
    "AutoConfig": "configuration_minicpm_reranker.LayerWiseMiniCPMConfig",
    "AutoModel": "modeling_minicpm_reranker.LayerWiseMiniCPMModel",
    "AutoModelForCausalLM": "modeling_minicpm_reranker.LayerWiseMiniCPMForCausalLM",
}
MINICPM_CLASS = "LayerWiseMiniCPMForCausalLM"


def _minicpm_classes():
    """FlagEmbedding's LayerWiseMiniCPMConfig and LayerWiseMiniCPMForCausalLM (imported late:
    FlagEmbedding is slow to import)."""
    from FlagEmbedding.inference.reranker.decoder_only.models.configuration_minicpm_reranker import (  # noqa: E501, PLC0415
        LayerWiseMiniCPMConfig)
    from FlagEmbedding.inference.reranker.decoder_only.models.modeling_minicpm_reranker import (  # noqa: E501, PLC0415
        LayerWiseMiniCPMForCausalLM)
    return LayerWiseMiniCPMConfig, LayerWiseMiniCPMForCausalLM


def _write_tiny_minicpm(out_dir, seed: int, vocab_size: int, hidden: int, layers: int,
                        heads: int, intermediate: int, max_positions: int) -> Path:
    """MiniCPM-2B's layout in small (multi-head attention, scaled embeddings and residuals,
    tied output head) with bge-reranker-v2-minicpm-layerwise's per-layer score heads: one for
    each cutoff layer from start_layer (a fifth of the layers in, as 8 of 40) to the last."""
    from transformers import LlamaTokenizer, LlamaTokenizerFast  # noqa: PLC0415

    config_class, model_class = _minicpm_classes()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    spm_path = out / SPM_FILE
    sp_size = train_llama_sentencepiece(spm_path, vocab_size, seed)
    # The published scales (MiniCPM-2B: scale_emb 12, dim_model_base 256 of 2304, scale_depth
    # 1.4); dim_model_base only enters the raw and complex heads, which the exporter refuses.
    config = config_class(
        vocab_size=sp_size, hidden_size=hidden, intermediate_size=intermediate,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
        max_position_embeddings=max_positions, bos_token_id=1, eos_token_id=2,
        scale_emb=12, dim_model_base=max(1, hidden // 9), scale_depth=1.4,
        start_layer=max(1, layers // 5), head_multi=True, head_type="simple",
        tie_word_embeddings=True, use_cache=True, rms_norm_eps=1e-5)
    config.architectures = [MINICPM_CLASS]
    config.auto_map = dict(MINICPM_AUTO_MAP)
    torch.manual_seed(seed)
    model = model_class(config).eval()
    spread_weights(model, seed)
    model.save_pretrained(out, safe_serialization=True)
    # The slow tokenizer, then the fast one converted from it (tokenizer.json), as published.
    LlamaTokenizer(vocab_file=str(spm_path), pad_token="<unk>",
                   model_max_length=max_positions).save_pretrained(out)
    LlamaTokenizerFast(vocab_file=str(spm_path), pad_token="<unk>",
                       model_max_length=max_positions).save_pretrained(out)
    write_tiny_marker(out, {"seed": seed, "architecture": "minicpm", "sentencepiece_size": sp_size,
                            "hidden": hidden, "layers": layers, "heads": heads,
                            "intermediate": intermediate, "max_positions": max_positions,
                            "start_layer": config.start_layer})
    return out


# --------------------------------------------------------------------------
# Bundle export
# --------------------------------------------------------------------------

class TokenLogits(nn.Module):
    """Decoder body + the rows of the LM head that the score reads (or the cutoff layer's score
    head, for the layerwise reranker).

    Position ids come from the mask (cumsum - 1, clamped at 0). Where prefix_reuse.py writes the
    attention (``walks``), rows are right-padded and attention is causal with no mask tensor;
    otherwise (Gemma 2) the attention bias is built here (causal AND key-not-padding) and passed
    to transformers' body as a 4D mask, so no HF mask helper makes Python decisions on the
    example inputs.  Only hidden[b, last_real_b] . W[tokens].T is computed: no [B, T, vocab]
    logits.
    """

    def __init__(self, body: nn.Module, rows: torch.Tensor, bias: torch.Tensor | None,
                 softcap: float | None, model_type: str, walks: bool,
                 num_layers: int | None = None):
        super().__init__()
        self.body = body
        self.model_type = model_type
        self.walks = walks              # the attention of prefix_reuse.py, else transformers'
        self.num_layers = num_layers    # the layers that run (a cutoff layer), None for all
        self.register_buffer("token_rows", rows.detach().clone().float())
        self.register_buffer("token_bias", None if bias is None else bias.detach().clone().float())
        self.softcap = softcap

    def forward(self, input_ids, attention_mask):
        mask = attention_mask.to(torch.long)
        if self.walks:  # right-padded rows, causal attention, no mask tensor
            hidden = prefix_reuse.whole_rows(self.body, self.model_type, input_ids, mask,
                                             self.num_layers)
            return self._logits(hidden, mask)
        # arange(device=x.device) would freeze the tracing device into the
        # graph; a cumsum of ones follows the input to CPU or CUDA.
        steps = torch.ones_like(mask[0]).cumsum(0) - 1
        position_ids = (mask.cumsum(1) - 1).clamp(min=0)
        keep = (steps[None, :] <= steps[:, None])[None, None] & (mask[:, None, None, :] > 0)
        bias = prefix_reuse.additive_mask(keep, self.body.embed_tokens.weight.dtype)
        hidden = self.body(input_ids=input_ids, attention_mask=bias,
                           position_ids=position_ids, use_cache=False)[0]
        return self._logits(hidden, mask)

    def prefix_cache(self, input_ids):
        """A record's shared prefix [1, P]: each layer's keys and values (prefix_reuse.py)."""
        return prefix_reuse.prefix_cache(self.body, self.model_type, input_ids, self.num_layers)

    def continue_from(self, input_ids, attention_mask, keys, values):
        """The logits of remainders [B, T] after the prefix of ``keys`` and ``values``: those
        of ``forward`` on the whole sequences."""
        hidden = prefix_reuse.continue_from(self.body, self.model_type, input_ids,
                                            attention_mask, keys, values, self.num_layers)
        return self._logits(hidden, attention_mask.to(torch.long))

    def _logits(self, hidden, mask):
        steps = torch.ones_like(mask[0]).cumsum(0) - 1
        last = (mask * steps[None, :]).amax(dim=1)        # last real position, any padding
        rows = torch.ones_like(last).cumsum(0) - 1
        # In float32 in bf16/fp16 bundles too: the score is a difference of logits.
        logits = hidden[rows, last].float() @ self.token_rows.float().t()
        if self.token_bias is not None:
            logits = logits + self.token_bias.float()
        if self.softcap is not None:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits


class _DeviceNeutralRope(nn.Module):
    """HF's Gemma rotary embedding computes ``inv_freq.to(x.device)``, which a
    trace records as a constant device (the tracing one), so the module
    could not move to CUDA.  Same values: freqs = position * inv_freq (HF's
    k=1 matmul is the same single product), cos/sin of [freqs, freqs]."""

    def __init__(self, inv_freq: torch.Tensor, attention_scaling: float = 1.0):
        super().__init__()
        self.register_buffer("inv_freq", inv_freq.detach().clone())
        self.attention_scaling = float(attention_scaling)

    @classmethod
    def of(cls, rope: nn.Module) -> "_DeviceNeutralRope":
        """The same rotary embedding as transformers' ``rope``."""
        if getattr(rope, "rope_type", "default") != "default":
            # Dynamic/scaled variants update inv_freq per call in HF.
            raise ValueError(f"rope_type {rope.rope_type!r} is not supported")
        return cls(rope.inv_freq, rope.attention_scaling)

    def forward(self, x, position_ids):
        freqs = position_ids[:, :, None].float() * self.inv_freq.float()[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos = emb.cos() * self.attention_scaling
        sin = emb.sin() * self.attention_scaling
        return cos.to(x.dtype), sin.to(x.dtype)


def _load(ckpt: Path):
    if read_json(ckpt / "config.json").get("model_type") == "minicpm":
        return _load_layerwise_minicpm(ckpt)
    config = AutoConfig.from_pretrained(ckpt)
    if config.model_type not in _SUPPORTED_TYPES:
        raise ValueError(f"{ckpt}: model_type {config.model_type!r} is not supported "
                         f"({sorted(_SUPPORTED_TYPES)})")
    # SDPA attention: the graph always passes its own 4D mask, so transformers' SDPA path takes no
    # shortcut from the example inputs (is_causal stays false), and the fused kernels never
    # materialise [batch, heads, length, length] scores as eager attention does (docs/speed.md).
    model = AutoModelForCausalLM.from_pretrained(ckpt, attn_implementation="sdpa",
                                                 dtype=torch.float32).eval()
    # The tokenizer the references use (AutoTokenizer: the fast one when tokenizer.json exists).
    tok = AutoTokenizer.from_pretrained(ckpt)
    return model, tok


def _load_layerwise_minicpm(ckpt: Path):
    """bge-reranker-v2-minicpm-layerwise through FlagEmbedding's own LayerWiseMiniCPMForCausalLM,
    as LayerWiseFlagLLMReranker loads it (the directory's copy of that code is not run)."""
    architectures = read_json(ckpt / "config.json").get("architectures") or []
    if architectures != [MINICPM_CLASS]:
        raise ValueError(f"{ckpt}: a minicpm checkpoint is exported as FlagEmbedding's layerwise "
                         f"reranker ({MINICPM_CLASS}); this one is {architectures}")
    config_class, model_class = _minicpm_classes()
    config = config_class.from_pretrained(ckpt)
    if config.head_type != "simple":
        # raw and complex heads give vocabulary logits, which LayerWiseFlagLLMReranker's
        # last-position pooling does not read as a score.
        raise ValueError(f"{ckpt}: head_type {config.head_type!r}; the layerwise reranker's "
                         "score heads are head_type 'simple'")
    if config.rope_scaling is not None:
        raise ValueError(f"{ckpt}: rope_scaling {config.rope_scaling} is not traced")
    # FlagEmbedding 1.4.2's MiniCPM code predates transformers' cache classes: with use_cache it
    # fails in this transformers (DynamicCache.get_usable_length); one forward reads no cache.
    config.use_cache = False
    model = model_class.from_pretrained(ckpt, config=config, attn_implementation="sdpa",
                                        dtype=torch.float32).eval()
    head_dim = config.hidden_size // config.num_attention_heads
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, head_dim, 2).float() / head_dim))
    model.model.rotary_emb = _DeviceNeutralRope(inv_freq)  # as MiniCPMRotaryEmbedding computes
    return model, AutoTokenizer.from_pretrained(ckpt)


def _score_head(model, cutoff_layer: int | None):
    """(rows [K, H], bias or None, layers that run) of the output the score reads: the score
    tokens' rows of the LM head, or the layerwise reranker's head of ``cutoff_layer``."""
    cfg = model.config
    if cfg.model_type != "minicpm":
        if cutoff_layer is not None:
            raise ValueError(f"--cutoff-layer is for the layerwise reranker, not {cfg.model_type}")
        return None
    layer = cfg.num_hidden_layers if cutoff_layer is None else cutoff_layer
    if not cfg.start_layer <= layer <= cfg.num_hidden_layers:
        raise ValueError(f"--cutoff-layer {layer}: this reranker has score heads for layers "
                         f"{cfg.start_layer} to {cfg.num_hidden_layers}")
    head = model.lm_head[layer - cfg.start_layer] if cfg.head_multi else model.lm_head
    return head.linear_head.weight, None, layer


def _bundle_tokenizer(ckpt: Path, out: Path, model, tok) -> tuple[dict, dict, int]:
    """(manifest tokenizer block, special ids, first ordinary id) of the bundle's tokenizer:
    Gemma's tokenizer.model as the engine's SentencePiece reader runs it, else tokenizer.json."""
    if model.config.model_type in ("gemma", "gemma2") and (ckpt / SPM_FILE).is_file():
        specials = check_gemma_layout(ckpt / SPM_FILE)
        hf_specials = {"bos": tok.bos_token_id, "eos": tok.eos_token_id,
                       "pad": tok.pad_token_id, "unk": tok.unk_token_id}
        if hf_specials != specials:
            raise ValueError(f"HF tokenizer specials {hf_specials} != tokenizer.model {specials}")
        sp_yes = spm.SentencePieceProcessor(model_file=str(ckpt / SPM_FILE)).encode("Yes")
        if sp_yes[:1] != tok("Yes", add_special_tokens=False)["input_ids"][:1]:
            raise ValueError(f"'Yes' is {sp_yes} for sentencepiece, not as the HF tokenizer has it")
        atomic_copy(ckpt / SPM_FILE, out / SPM_FILE)
        return ({"kind": "gemma_sentencepiece", "file": SPM_FILE, "add_bos": True}, specials, 4)
    bundled = bundle_tokenizer(ckpt, out, model.config)
    if bundled.manifest["kind"] != "tokenizer_json":
        raise FileNotFoundError(f"{ckpt}: no tokenizer.json (this decoder's tokenizer is read "
                                "from it)")
    return bundled.manifest, bundled.special_tokens, bundled.first_ordinary_id


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
def _layerwise_logits(model, ids, mask, layer):
    """FlagEmbedding's LayerWiseMiniCPMForCausalLM: the score head of ``layer`` at each row's
    last real token, its positions from the mask (right padding: 0.. as FlagEmbedding's)."""
    position_ids = (mask.cumsum(1) - 1).clamp(min=0)
    last = (mask * torch.arange(ids.size(1))).amax(dim=1)
    model.lm_head.to(model.model.embed_tokens.weight.dtype)  # the body's dtype, as it was cast
    out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids,
                output_hidden_states=True, cutoff_layers=[layer], use_cache=False)
    return out.logits[0][torch.arange(ids.size(0)), last][:, None].float()


@torch.no_grad()
def _hf_token_logits(model, hf_rope, ids, mask, token_ids):
    """The eager HF model's logits[b, last_real_b, token_ids] with explicit
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
    return logits[torch.arange(ids.size(0)), col][:, token_ids].float()


def _longest_sequence(template: dict, tok, max_length: int, max_positions: int) -> int:
    """The longest sequence the template's truncation rule builds at ``max_length``, with the
    default instruction (the engine checks each job's own)."""
    instruction = template["instruction"]
    filled = (instruction["format"].format(instruction=instruction["default"])
              if instruction["default"] is not None else "")

    def length(segment):
        return sum(len(p["ids"]) if "ids" in p else
                   len(tok(p["text"].format(instruction=filled), add_special_tokens=False)
                       ["input_ids"]) for p in template[segment])

    prefix, suffix = length("prefix"), length("suffix")
    rule = template["truncation"]
    if rule == "flag_llm":  # prefix + q + sep + p cut to max_length + |suffix|, then the suffix
        return max_length + 2 * suffix
    if rule == "whole_text":  # max_length counts everything
        return max_length
    return min(max_length, max_positions - prefix - suffix) + prefix + suffix  # mxbai


@torch.no_grad()
def export_bundle(checkpoint_dir, out_dir, max_length: int | None = None,
                  dtype: str = "fp32", model_format: str = "torchscript",
                  kind: str | None = None, cutoff_layer: int | None = None) -> Path:
    """Trace ``checkpoint_dir`` into a bundle at ``out_dir`` and verify it.

    ``kind`` names the template (models/llm_reranker/templates.py; default by model_type).
    ``cutoff_layer``: the layer whose score head the layerwise reranker reads (default the last,
    as LayerWiseFlagLLMReranker's; its model card uses 28 of 40): only that many layers run.
    ``max_length`` is the reference's max_length, read as its truncation rule reads it (default
    the reference's, within the model's positions): FlagLLMReranker's 512 for the query and the
    passage, the prompt on top; the whole sequence for Qwen3-Reranker; mxbai-rerank's, the
    templates on top.
    """
    t0 = time.time()
    ckpt = hf_checkpoint_dir(checkpoint_dir)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    model, tok = _load(ckpt)
    cfg = model.config
    name = kind or DEFAULT_TEMPLATE.get(cfg.model_type)
    if name not in TEMPLATES:
        raise ValueError(f"{ckpt}: say which reranker template a {cfg.model_type} checkpoint "
                         f"follows with --kind (one of {sorted(TEMPLATES)})" if name is None else
                         f"--kind {name!r} is not a template (one of {sorted(TEMPLATES)})")
    tokenizer_block, specials, first_ordinary = _bundle_tokenizer(ckpt, out, model, tok)
    max_positions = cfg.max_position_embeddings
    head = _score_head(model, cutoff_layer)
    layer = None if head is None else head[2]
    if max_length is None:
        max_length = TEMPLATES[name].max_length
        while max_length > 8 and _longest_sequence(
                manifest_blocks(name, tok, max_length, layer=layer)[0], tok, max_length,
                max_positions) > max_positions:
            max_length //= 2  # the reference's default, halved until it fits a small model
    template, score = manifest_blocks(name, tok, max_length, ckpt.name, layer)
    if (score["rule"] == "layer_head") != (head is not None):
        raise ValueError(f"--kind {name} reads {score['rule']}, which a {cfg.model_type} "
                         "checkpoint does not give")
    token_ids = score["token_ids"]
    columns = len(token_ids) or 1  # the graph's outputs: a layer_head rule reads one
    max_sequence = _longest_sequence(template, tok, max_length, max_positions)
    if max_length < 8:
        raise ValueError(f"max_length {max_length} must be at least 8")
    if max_sequence > max_positions:
        raise ValueError(f"max_length {max_length}: sequences reach {max_sequence} tokens, "
                         f"model has {max_positions} positions")

    window = getattr(cfg, "sliding_window", None)
    if window is not None and getattr(cfg, "use_sliding_window", True) and window < max_sequence:
        # The graph's own 4D mask is causal over the whole sequence.
        raise ValueError(f"{ckpt}: sliding-window attention ({window} tokens) shorter than the "
                         f"longest sequence ({max_sequence}) is not traced; lower --max-length "
                         f"to at most the window")
    if head is None:
        lm_head = model.get_output_embeddings()
        rows_of = torch.tensor(token_ids)
        head = (lm_head.weight[rows_of], None if lm_head.bias is None else lm_head.bias[rows_of],
                None)
    softcap = getattr(cfg, "final_logit_softcapping", None)
    # The decoders whose attention prefix_reuse.py writes: right-padded rows with no mask tensor,
    # and a record's shared prefix run once (TorchScript only: a package keeps forward only).
    walks = prefix_reuse.writes_attention(cfg)
    wrapper = TokenLogits(model.model, head[0], head[1], softcap, cfg.model_type, walks,
                          layer).eval()
    reuse = model_format == "torchscript" and walks
    # model.model is shared with the HF reference below; _hf_token_logits puts
    # HF's own rotary embedding back while it runs.
    hf_rope = model.model.rotary_emb
    if layer is None:
        model.model.rotary_emb = _DeviceNeutralRope.of(hf_rope)

    def reference(ids, mask):
        if layer is not None:
            return _layerwise_logits(model, ids, mask, layer)
        ref = _hf_token_logits(model, hf_rope, ids, mask, token_ids)
        # HF applies the soft cap after the head.
        return ref if softcap is None else torch.tanh(ref / softcap) * softcap

    gen = torch.Generator().manual_seed(1234)
    bos = specials["bos"] if TEMPLATES[name].bos else None

    def rows(lengths):  # [<bos>] + random ordinary pieces
        out_rows = []
        for n in lengths:
            r = torch.randint(first_ordinary, cfg.vocab_size, (n,), generator=gen)
            if bos is not None:
                r[0] = bos
            out_rows.append(r)
        return out_rows

    # Verify the saved file against (1) the eager HF model's LM-head logits
    # (full vocabulary rows, explicit position ids), (2) the eager wrapper,
    # (3) the same rows unpadded one by one; each padded batch both ways.
    # A 2B model on CPU is slow, so its longest checked row is shorter.
    n_params = sum(p.numel() for p in model.parameters())
    longest = min(max_sequence, 1024 if n_params < 1e8 else 128)
    pad_id = specials["pad"]

    shape_tol = TRACE_TOL if dtype == "fp32" else 4 * torch.finfo(DTYPES[dtype][1]).eps

    def verify(loaded):
        worst = {"vs_hf": 0.0, "vs_eager": 0.0, "vs_unpadded": 0.0}
        for lengths in ([9, 9], [37, 20, 3], [longest, 64, 17, 6]):
            batch_rows = rows(lengths)
            alone = torch.cat([loaded(*_pad([r], "right", pad_id)) for r in batch_rows])
            for side in ("right",) if walks or len(set(lengths)) == 1 else ("right", "left"):
                ids, mask = _pad(batch_rows, side, pad_id)
                got = loaded(ids, mask)
                if got.shape != (len(lengths), columns) or got.dtype != torch.float32:
                    raise RuntimeError(f"traced output has shape {tuple(got.shape)} {got.dtype}")
                ref = reference(ids, mask)
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
        if reuse:
            worst["reuse_vs_whole"] = check_reuse(loaded, scaled_tol=shape_tol)
        return worst

    def check_reuse(loaded, scaled_tol):
        """A prefix run once and remainders after it give the logits of the whole rows."""
        worst = 0.0
        for prefix_length, lengths in ((13, [9, 30, 1, 17]), (min(longest // 2, 200), [40, 3])):
            prefix = rows([prefix_length])[0]
            remainders = [torch.randint(first_ordinary, cfg.vocab_size, (n,), generator=gen)
                          for n in lengths]
            whole = loaded(*_pad([torch.cat([prefix, r]) for r in remainders], "right", pad_id))
            keys, values = loaded.prefix_cache(prefix[None])
            got = loaded.continue_from(*_pad(remainders, "right", pad_id), keys, values)
            diff = (got - whole).abs().max().item()
            tol = scaled_tol * max(1.0, whole.abs().max().item())
            worst = max(worst, diff)
            if not diff <= tol:
                raise RuntimeError(f"prefix reuse: remainders {lengths} after {prefix_length} "
                                   f"prefix tokens differ from the whole rows by {diff:.3g} > "
                                   f"{tol:.3g}")
        return worst

    # Gemma's sqrt(hidden) embedding scale is a torch.tensor constant, which
    # the tracer warns about.
    methods = {}
    if reuse:
        prefix = rows([12])[0][None]
        methods = {"prefix_cache": (prefix,),
                   "continue_from": lambda cast: (*_pad(rows([5, 8]), "right", pad_id),
                                                  *cast.prefix_cache(prefix))}
    model_path, emb_name, worst = save_verified_trace(
        wrapper, _pad(rows([11, 7]), "right", pad_id), out, verify,
        model.get_input_embeddings().weight, ignore_tracer_warnings=True, dtype=dtype,
        model_format=model_format, methods=methods)

    manifest = {
        **manifest_header("llm_reranker", model_path),
        "architecture": {
            **encoder_architecture(cfg),
            "num_kv_heads": cfg.num_key_value_heads,
            "head_dim": getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads,
        },
        "vocab_size": cfg.vocab_size,
        "max_positions": max_positions,
        "max_length": max_length,
        "max_sequence_length": max_sequence,
        "special_tokens": specials,
        "tokenizer": tokenizer_block,
        "template": template,
        "score": score,
        "inputs": ["input_ids", "attention_mask"],
        "outputs": ["logits"],
        "padding": "right" if walks else "either",
        **({"layerwise": {"cutoff_layer": layer, "start_layer": cfg.start_layer,
                          "layers_run": layer}} if layer is not None else {}),
        **({"prefix_reuse": {"prefix_method": "prefix_cache", "continue_method": "continue_from",
                             "num_layers": layer or cfg.num_hidden_layers}} if reuse else {}),
        **dtype_fields(dtype),
        "embedding_parameter": emb_name,
        "embedding_scale": embedding_scale_name(emb_name),
        "source": source_block(ckpt, model_class=type(model).__name__,
                               tokenizer_class=type(tok).__name__,
                               padding_side=tok.padding_side),
    }
    write_manifest(out, manifest)

    arch = manifest["architecture"]
    tokens = (", ".join(f"{t!r}={i}" for t, i in zip(score["tokens"], token_ids)) or
              f"the score head of layer {layer}")
    print(f"bundle: {out}")
    print(f"  model:      {type(model).__name__} ({cfg.model_type}) layers={arch['num_layers']} "
          f"hidden={arch['hidden_size']} heads={arch['num_heads']}/{arch['num_kv_heads']}kv "
          f"head_dim={arch['head_dim']} params={n_params / 1e6:.2f}M")
    print(f"  template:   {name} ({template['reference']}), {template['truncation']} truncation; "
          f"score {score['rule']} of {tokens}")
    print(f"  tokenizer:  {tokenizer_block['kind']} ({tokenizer_block['file']}), "
          f"vocab {cfg.vocab_size}")
    print(f"  lengths:    max_length={max_length} max_sequence={max_sequence} "
          f"max_positions={max_positions}")
    print(f"  {model_path.name}:   {model_path.stat().st_size / 1e6:.2f} MB "
          f"sha256={manifest['model_sha256'][:16]}...")
    print("  checks:     " + ", ".join(f"{k} {v:.2e}" for k, v in worst.items())
          + f" (tol {TRACE_TOL:g}; longest row {longest})")
    print(f"  took {time.time() - t0:.1f}s")
    return out
