"""The shared prefix of a rerank record, run once: two more methods of the LLM reranker's graph.

Every passage of a rerank record starts with the same tokens (the template's prefix, the query
part with its instruction, the separator). ``prefix_cache(input_ids [1, P])`` runs them once and
returns each layer's keys and values after RoPE, ``[layers, kv_heads, P, head_dim]`` twice;
``continue_from(input_ids [B, T], attention_mask [B, T], keys, values)`` runs the passages'
remainders against them in one batch (positions P + 0.., every prefix position visible, causal
among the remainder's own tokens) and returns the score's logits ``[B, K]`` as ``forward`` does
on the whole sequences.

The layers are transformers' own modules (norms, projections, q/k norms, MLP); what is written
here is the attention around them, as transformers' SDPA attention computes it (grouped key/value
heads repeated, the additive mask, ``scaling``, torch's scaled_dot_product_attention). Decoders whose layers do more (Gemma 2's soft-capped attention and sliding windows,
a Mistral sliding window shorter than the positions) get no reuse: ``supports_prefix_reuse``.
"""

from __future__ import annotations

import torch
from torch import nn

# The attention written here is that of these decoders' layers.
REUSE_TYPES = ("gemma", "qwen2", "qwen3", "llama", "mistral")


def supports_prefix_reuse(config) -> bool:
    if config.model_type not in REUSE_TYPES:
        return False
    window = getattr(config, "sliding_window", None)
    uses_window = getattr(config, "use_sliding_window", window is not None)
    return not (uses_window and window is not None and window < config.max_position_embeddings)


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _attend(layer: nn.Module, hidden, cos, sin, bias, past_k=None, past_v=None):
    """One layer's attention on ``hidden`` [B, T, H] (after its input norm), with the keys and
    values of a prefix in front when given; returns (output, keys, values of these tokens)."""
    attn = layer.self_attn
    batch, length = hidden.shape[0], hidden.shape[1]
    shape = (batch, length, -1, attn.head_dim)
    q = attn.q_proj(hidden).view(shape)
    k = attn.k_proj(hidden).view(shape)
    if hasattr(attn, "q_norm"):  # Qwen3
        q, k = attn.q_norm(q), attn.k_norm(k)
    q, k = q.transpose(1, 2), k.transpose(1, 2)
    v = attn.v_proj(hidden).view(shape).transpose(1, 2)
    cos, sin = cos[:, None], sin[:, None]
    q = q * cos + _rotate_half(q) * sin
    k = k * cos + _rotate_half(k) * sin
    own_k, own_v = k, v
    if past_k is not None:
        k = torch.cat([past_k.expand(batch, -1, -1, -1), k], dim=2)
        v = torch.cat([past_v.expand(batch, -1, -1, -1), v], dim=2)
    groups = q.shape[1] // k.shape[1]
    if groups > 1:
        k = k[:, :, None].expand(-1, -1, groups, -1, -1).reshape(batch, q.shape[1], -1,
                                                                 attn.head_dim)
        v = v[:, :, None].expand(-1, -1, groups, -1, -1).reshape(batch, q.shape[1], -1,
                                                                 attn.head_dim)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias,
                                                           scale=attn.scaling)
    out = out.transpose(1, 2).reshape(batch, length, -1)
    return attn.o_proj(out), own_k, own_v


def _embed(body: nn.Module, model_type: str, input_ids):
    hidden = body.embed_tokens(input_ids)
    if model_type == "gemma":  # GemmaModel scales the embeddings by sqrt(hidden) in its dtype
        hidden = hidden * torch.tensor(body.config.hidden_size ** 0.5, dtype=hidden.dtype)
    return hidden


def additive_mask(keep, dtype):
    """0 where ``keep``, the dtype's lowest value elsewhere: the attention mask the graphs add."""
    return torch.zeros_like(keep, dtype=dtype).masked_fill(~keep, torch.finfo(dtype).min)


def prefix_cache(body: nn.Module, model_type: str, input_ids):
    """Keys and values [layers, kv_heads, P, head_dim] of a prefix [1, P] (no padding)."""
    steps = torch.ones_like(input_ids[0]).cumsum(0) - 1
    hidden = _embed(body, model_type, input_ids)
    cos, sin = body.rotary_emb(hidden, steps[None])
    bias = additive_mask((steps[None, :] <= steps[:, None])[None, None], hidden.dtype)
    keys, values = [], []
    last = len(body.layers) - 1
    for index, layer in enumerate(body.layers):
        out, k, v = _attend(layer, layer.input_layernorm(hidden), cos, sin, bias)
        keys.append(k[0])
        values.append(v[0])
        if index < last:  # the last layer's output is not needed: only its keys and values
            hidden = hidden + out
            hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
    return torch.stack(keys), torch.stack(values)


def continue_from(body: nn.Module, model_type: str, input_ids, attention_mask, keys, values):
    """The final hidden states [B, T, H] of remainders [B, T] (right- or left-padded) after the
    prefix whose keys and values are given."""
    mask = attention_mask.to(torch.long)
    steps = torch.ones_like(mask[0]).cumsum(0) - 1
    prefix = torch.ones_like(keys[0, 0, :, 0], dtype=torch.long)  # one per prefix position
    positions = (mask.cumsum(1) - 1).clamp(min=0) + prefix.sum()
    hidden = _embed(body, model_type, input_ids)
    cos, sin = body.rotary_emb(hidden, positions)
    own = (steps[None, :] <= steps[:, None])[None, None] & (mask[:, None, None, :] > 0)
    seen = (prefix[None, None, None, :] > 0).expand(mask.shape[0], 1, mask.shape[1], -1)
    bias = additive_mask(torch.cat([seen, own], dim=-1), hidden.dtype)
    for index, layer in enumerate(body.layers):
        out, _, _ = _attend(layer, layer.input_layernorm(hidden), cos, sin, bias,
                            keys[index][None], values[index][None])
        hidden = hidden + out
        hidden = hidden + layer.mlp(layer.post_attention_layernorm(hidden))
    return body.norm(hidden)
