"""Export published text embedders, from their directories as they come, for the bi_encoder
adapter.

A sentence-transformers directory (modules.json: Transformer, then Pooling, Dense and
Normalize in any published combination; config_sentence_transformers.json: prompts and the
similarity function; sentence_bert_config.json: max_seq_length) or a bare Hugging Face encoder
(no modules.json: mean pooling, as SentenceTransformer builds one). The backbone is chosen by
config.json's model_type: bert (MiniLM, bge-*-en-v1.5, e5, gte), xlm-roberta / roberta,
modernbert, and the Qwen3 / Qwen2 decoders (Qwen3-Embedding, last-token pooling).

The bundle's graph computes what SentenceTransformer.encode returns:
  model.pt     (input_ids, attention_mask[, token_type_ids]) int64 [B, T], right-padded
               -> sentence_embedding float32 [B, D], pooled, through the Dense layers and
               normalised when the directory says so.
  engine.json  pooling "graph", the prompts, the similarity function, the tokenizer.
Right padding gives a decoder the same last-token states as the left padding Qwen3-Embedding's
model card asks for: under causal attention no real token sees a pad, and RoPE depends on
relative positions only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from models.common.bundle import (TRACE_TOL, atomic_copy, check_lengths, compare_with_eager,
                                  dtype_fields, embedding_scale_name, encoder_architecture,
                                  hf_checkpoint_dir,
                                  manifest_header, resolve_max_length, save_verified_trace,
                                  source_block, write_manifest)
from models.common.backbones import BACKBONES, backbone_kind
from models.common.tokenizer_files import bundle_tokenizer, random_rows
from models.embedder.checkpoint import POOLING_MODES, SentenceModules, read_sentence_modules

# Activations a Dense module may name (sentence-transformers stores the class's full name).
_ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": nn.Identity,
    "torch.nn.modules.activation.Tanh": nn.Tanh,
    "torch.nn.modules.activation.ReLU": nn.ReLU,
    "torch.nn.modules.activation.GELU": nn.GELU,
    "torch.nn.modules.activation.Sigmoid": nn.Sigmoid,
    "torch.nn.modules.activation.SiLU": nn.SiLU,
}


def _pool(mode: str, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """One pooling mode, with the arithmetic of sentence-transformers' Pooling module."""
    mask = attention_mask.unsqueeze(-1).expand_as(hidden).to(hidden.dtype)
    if mode == "cls":
        # The first real token: index 0 under the right padding the engine uses.
        first = attention_mask.to(torch.int).argmax(dim=1)
        index = first.unsqueeze(-1).unsqueeze(1).expand(-1, 1, hidden.shape[-1])
        return torch.gather(hidden, 1, index).squeeze(1)
    if mode == "max":
        return hidden.masked_fill(mask == 0, float("-inf")).max(dim=1).values
    if mode in ("mean", "mean_sqrt_len_tokens"):
        total = (hidden * mask).sum(dim=1)
        count = torch.clamp(mask.sum(dim=1), min=1e-9)
        return total / count if mode == "mean" else total / torch.sqrt(count)
    if mode == "weightedmean":
        positions = torch.arange(1, hidden.shape[1] + 1, device=hidden.device)
        weights = mask * positions.unsqueeze(0).unsqueeze(-1).expand_as(hidden).to(hidden.dtype)
        return (hidden * weights).sum(dim=1) / torch.clamp(weights.sum(dim=1), min=1e-9)
    if mode == "lasttoken":
        length = hidden.shape[1]
        values, from_end = attention_mask.to(torch.int32).flip(1).max(1)
        from_end = torch.where(values == 0, length - 1, from_end)
        index = (length - from_end - 1).unsqueeze(-1).unsqueeze(1).expand(-1, 1, hidden.shape[-1])
        return torch.gather(hidden * mask, 1, index).squeeze(dim=1)
    raise ValueError(f"pooling mode {mode!r} is not one of {POOLING_MODES}")


def causal_padding_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The additive [B, 1, L, L] mask of a decoder: each position sees itself, the positions
    before it and no padding. transformers' own mask builder (vmap) does not trace; a 4D mask
    is taken as it is."""
    length = attention_mask.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=attention_mask.device).tril()
    allowed = causal.unsqueeze(0) & attention_mask.bool().unsqueeze(1)
    blocked = torch.full((), torch.finfo(dtype).min, dtype=dtype, device=attention_mask.device)
    zero = torch.zeros((), dtype=dtype, device=attention_mask.device)
    return torch.where(allowed, zero, blocked).unsqueeze(1)


class SentenceEmbedding(nn.Module):
    """The backbone's last hidden states, pooled (modes concatenated in sentence-transformers'
    order), through the Dense layers, normalised when asked: SentenceTransformer's forward."""

    def __init__(self, backbone: nn.Module, modules: SentenceModules, token_types: bool,
                 causal: bool = False):
        super().__init__()
        self.causal = causal
        self.backbone = backbone
        self.modes = list(modules.pooling_modes)
        self.dense = nn.ModuleList()
        self.activations = nn.ModuleList()
        for layer in modules.dense:
            linear = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)
            with torch.no_grad():
                linear.weight.copy_(layer.weight)
                if layer.bias is not None:
                    linear.bias.copy_(layer.bias)
            if layer.activation not in _ACTIVATIONS:
                raise ValueError(f"{layer.path}: activation {layer.activation!r} is not one of "
                                 f"{sorted(_ACTIVATIONS)}")
            self.dense.append(linear)
            self.activations.append(_ACTIVATIONS[layer.activation]())
        self.normalize = modules.normalize
        self.token_types = token_types

    def _causal_mask(self, attention_mask):
        dtype = self.backbone.get_input_embeddings().weight.dtype
        return causal_padding_mask(attention_mask, dtype if dtype.is_floating_point
                                   else torch.float32)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.causal:
            kwargs["attention_mask"] = self._causal_mask(attention_mask)
        if self.token_types:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.backbone(**kwargs)[0]
        pooled = torch.cat([_pool(mode, hidden, attention_mask) for mode in self.modes], dim=1)
        for linear, activation in zip(self.dense, self.activations):
            pooled = activation(linear(pooled))
        if self.normalize:
            pooled = F.normalize(pooled, p=2, dim=1)
        return pooled.float()


def _load_backbone(path: Path, kind: str) -> nn.Module:
    from transformers import AutoModel  # noqa: PLC0415

    # The attention the trace is known to stay valid with for every batch (the padded 4D mask in
    # the graph); compare_with_eager checks batches with and without padding.
    model = AutoModel.from_pretrained(path, attn_implementation=BACKBONES[kind].attention,
                                      dtype=torch.float32)
    model.config.use_cache = False
    return model.eval()


@torch.no_grad()
def export_bundle(checkpoint_dir, out_dir, max_length: int | None = None, dtype: str = "fp32",
                  model_format: str = "torchscript") -> Path:
    """Trace the directory's embedder into a bundle at ``out_dir`` and verify it.

    ``max_length`` defaults to sentence_bert_config.json's max_seq_length, else the smaller of
    512 and the position limit.
    """
    t0 = time.time()
    ckpt = Path(checkpoint_dir).resolve()
    modules = read_sentence_modules(ckpt)
    backbone_dir = hf_checkpoint_dir(modules.transformer_path)
    kind = backbone_kind(backbone_dir)
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)

    backbone = _load_backbone(backbone_dir, kind)
    cfg = backbone.config
    backbone_traits = BACKBONES[kind]
    token_types = backbone_traits.token_types and getattr(cfg, "type_vocab_size", 0) > 0
    tokenizer = bundle_tokenizer(backbone_dir, out, cfg, lowercase_text=modules.do_lower_case)
    max_positions = cfg.max_position_embeddings
    if backbone_traits.position_offset:
        max_positions -= cfg.pad_token_id + 1  # positions start after the pad id
    default_length = modules.max_seq_length or min(512, max_positions)
    max_length = resolve_max_length(max_length, min(default_length, max_positions), max_positions)

    wrapper = SentenceEmbedding(backbone, modules, token_types,
                                causal=backbone_traits.causal).eval()
    gen = torch.Generator().manual_seed(1234)
    batch = lambda lengths: random_rows(gen, lengths, tokenizer, token_types)
    checks = check_lengths(max_length)
    dimension = wrapper(*batch([4])).shape[1]

    def check_output(got, lengths, inputs):
        if tuple(got.shape) != (len(lengths), dimension) or got.dtype != torch.float32:
            raise RuntimeError(f"traced output has shape {tuple(got.shape)} {got.dtype}, "
                               f"expected {(len(lengths), dimension)} float32")

    model_path, emb_name, worst = save_verified_trace(
        wrapper, batch([11, 7]), out,
        lambda loaded: compare_with_eager(loaded, wrapper, batch, checks, check_output),
        backbone.get_input_embeddings().weight, dtype=dtype, model_format=model_format,
        ignore_tracer_warnings=True)

    manifest = {
        **manifest_header("bi_encoder", model_path),
        "architecture": {**encoder_architecture(cfg, kind),
                         "embedding_dimension": int(dimension)},
        "vocab_size": tokenizer.vocab_size,
        "max_positions": max_positions,
        "max_length": max_length,
        "special_tokens": tokenizer.special_tokens,
        "tokenizer": tokenizer.manifest,
        "inputs": ["input_ids", "attention_mask"] + (["token_type_ids"] if token_types else []),
        "outputs": ["sentence_embedding"],
        **dtype_fields(dtype),
        "embedding_parameter": emb_name,
        "embedding_scale": embedding_scale_name(emb_name),
        "pooling": "graph",
        "pooling_modes": list(modules.pooling_modes),
        "normalized": modules.normalize,
        "similarity": modules.similarity,
        "prompts": modules.prompts,
        "source": source_block(ckpt, model_class=type(backbone).__name__,
                               layout="sentence-transformers" if modules.from_modules_json
                               else "transformers"),
    }
    if modules.default_prompt_name:
        manifest["default_prompt_name"] = modules.default_prompt_name
    write_manifest(out, manifest)

    print(f"bundle: {out}")
    print(f"  model:      {type(backbone).__name__} ({kind}) layers={cfg.num_hidden_layers} "
          f"hidden={cfg.hidden_size}; pooling {'+'.join(modules.pooling_modes)}, "
          f"{len(modules.dense)} dense, {'normalised' if modules.normalize else 'not normalised'}"
          f" -> {dimension} dims")
    print(f"  tokenizer:  {tokenizer.manifest['kind']} ({tokenizer.manifest['file']}), "
          f"vocab {tokenizer.vocab_size}, max_length={max_length}")
    if modules.prompts:
        print(f"  prompts:    {sorted(modules.prompts)}")
    print(f"  trace check: {len(checks)} batches, max abs diff {worst:.2e} (tol {TRACE_TOL:g})")
    print(f"  took {time.time() - t0:.1f}s")
    return out


# What each tiny architecture imitates: bge-*-en-v1.5 / e5 (BERT, CLS pooling, a Dense layer
# here to cover it, Normalize, query/passage prompts), ModernBERT embedders (mean pooling) and
# Qwen3-Embedding and gte-Qwen2 (last-token pooling, Normalize, a query instruction) and
# multilingual-e5 (XLM-R, mean pooling, Normalize, "query: " / "passage: ").
_TINY_LAYOUTS = {
    "bert": dict(pooling="cls", dense=16, prompts={"query": "query: ", "passage": "passage: "}),
    "modernbert": dict(pooling="mean", dense=0,
                       prompts={"query": "search_query: ", "passage": "search_document: "}),
    "qwen3": dict(pooling="lasttoken", dense=0, prompts=None),
    "qwen2": dict(pooling="lasttoken", dense=0, prompts=None),
    "xlm-roberta": dict(pooling="mean", dense=0,
                        prompts={"query": "query: ", "passage": "passage: "}),
}


def write_tiny_checkpoint(out_dir, seed: int = 0, architecture: str = "bert",
                          pooling: str | None = None, dense: int | None = None,
                          normalize: bool = True, prompts: dict | None = None,
                          tokenizer_json: bool = True, do_lower_case: bool = False) -> Path:
    """A tiny random sentence-transformers directory (models/embedder/tiny.py) laid out as the
    published embedders of ``architecture`` are (_TINY_LAYOUTS); the keywords override it."""
    from models.embedder.tiny import (QWEN3_QUERY_PROMPT,  # noqa: PLC0415
                                      write_tiny_sentence_transformer)

    if architecture not in _TINY_LAYOUTS:
        raise ValueError(f"architecture {architecture!r} is not one of {sorted(_TINY_LAYOUTS)}")
    layout = _TINY_LAYOUTS[architecture]
    if prompts is None:
        prompts = layout["prompts"] or {"query": QWEN3_QUERY_PROMPT}
    return write_tiny_sentence_transformer(
        out_dir, seed=seed, architecture=architecture,
        pooling=pooling or layout["pooling"], dense=layout["dense"] if dense is None else dense,
        normalize=normalize, prompts=prompts, tokenizer_json=tokenizer_json,
        do_lower_case=do_lower_case)
