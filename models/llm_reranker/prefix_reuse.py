"""The decoder stack of the LLM reranker graphs, with the attention written here: ``forward`` on
whole right-padded rows, and the shared prefix of a rerank record run once.

Every passage of a rerank record starts with the same tokens (the template's prefix, the query
part with its instruction, the separator). ``prefix_cache(input_ids [1, P])`` runs them once and
returns each layer's keys and values after RoPE, ``[layers, kv_heads, P, head_dim]`` twice;
``continue_from(input_ids [B, T], attention_mask [B, T], keys, values)`` runs the passages'
remainders against them in one batch (positions P + 0.., every prefix position visible, causal
among the remainder's own tokens) and returns the score's logits ``[B, K]`` as ``forward`` does
on the whole sequences.

The layers are the reference's own modules (norms, projections, q/k norms, MLP); what is written
here is the attention around them, as transformers' SDPA attention computes it (grouped key/value
heads repeated, ``scaling``, torch's scaled_dot_product_attention), and MiniCPM's scaled embedding
and residuals (FlagEmbedding's LayerWiseMiniCPMModel). Rows are padded on the right (as the
engine pads them), so no mask is built for whole rows: causal attention alone keeps every real
token from the padding after it, and the fused kernels skip the masked half
(``is_causal``): no [batch, 1, length, length] tensor at any length (docs/memory.md). A
continuation's mask is one [1, 1, T, P + T] for the whole batch. Decoders whose layers do more
(Gemma 2's soft-capped attention and sliding windows, a Mistral sliding window shorter than the
positions) keep transformers' forward and get no reuse: ``writes_attention``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# The attention written here is that of these decoders' layers.
WALK_TYPES = ("gemma", "qwen2", "qwen3", "llama", "mistral", "minicpm")


def writes_attention(config) -> bool:
    """Whether the graphs run ``config``'s layers through the attention written here."""
    if config.model_type not in WALK_TYPES:
        return False
    window = getattr(config, "sliding_window", None)
    uses_window = getattr(config, "use_sliding_window", window is not None)
    return not (uses_window and window is not None and window < config.max_position_embeddings)


def _rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _attend(layer: nn.Module, hidden, cos, sin, bias, past_k=None, past_v=None):
    """One layer's attention on ``hidden`` [B, T, H] (after its input norm), with the keys and
    values of a prefix in front when given; causal when ``bias`` is None. Returns (output, keys,
    values of these tokens)."""
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
    # MiniCPM's attention has no ``scaling``: SDPA's default 1/sqrt(head_dim), as it runs.
    scale = getattr(attn, "scaling", None)
    out = torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=bias, is_causal=bias is None, scale=scale)
    out = out.transpose(1, 2).reshape(batch, length, -1)
    return attn.o_proj(out), own_k, own_v


def _embed(body: nn.Module, model_type: str, input_ids):
    hidden = body.embed_tokens(input_ids)
    if model_type == "gemma":  # GemmaModel scales the embeddings by sqrt(hidden) in its dtype
        hidden = hidden * torch.tensor(body.config.hidden_size ** 0.5, dtype=hidden.dtype)
    elif model_type == "minicpm":  # LayerWiseMiniCPMModel: embed_tokens(ids) * scale_emb
        hidden = hidden * body.config.scale_emb
    return hidden


def _layer(body: nn.Module, model_type: str, layer: nn.Module, hidden, cos, sin, bias,
           past_k=None, past_v=None, last: bool = False):
    """One decoder layer: (hidden after it, its keys, its values); ``last`` skips what only the
    keys and values of a prefix's last layer do not need."""
    out, k, v = _attend(layer, layer.input_layernorm(hidden), cos, sin, bias, past_k, past_v)
    if last:
        return hidden, k, v
    if model_type == "minicpm":  # residual + branch * (scale_depth / sqrt(num_hidden_layers))
        scale = body.config.scale_depth / math.sqrt(body.config.num_hidden_layers)
        hidden = hidden + out * scale
        return hidden + layer.mlp(layer.post_attention_layernorm(hidden)) * scale, k, v
    hidden = hidden + out
    return hidden + layer.mlp(layer.post_attention_layernorm(hidden)), k, v


def _layers(body: nn.Module, num_layers: int | None):
    return list(body.layers)[:num_layers] if num_layers is not None else list(body.layers)


def additive_mask(keep, dtype):
    """0 where ``keep``, the dtype's lowest value elsewhere: the attention mask the graphs add."""
    return torch.zeros_like(keep, dtype=dtype).masked_fill(~keep, torch.finfo(dtype).min)


def whole_rows(body: nn.Module, model_type: str, input_ids, attention_mask,
               num_layers: int | None = None):
    """The hidden states [B, T, H] after ``num_layers`` layers (all by default) and the final
    norm, of right-padded rows."""
    mask = attention_mask.to(torch.long)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    hidden = _embed(body, model_type, input_ids)
    cos, sin = body.rotary_emb(hidden, positions)
    for layer in _layers(body, num_layers):
        hidden, _, _ = _layer(body, model_type, layer, hidden, cos, sin, None)
    return body.norm(hidden)


def prefix_cache(body: nn.Module, model_type: str, input_ids, num_layers: int | None = None):
    """Keys and values [layers, kv_heads, P, head_dim] of a prefix [1, P] (no padding)."""
    steps = torch.ones_like(input_ids[0]).cumsum(0) - 1
    hidden = _embed(body, model_type, input_ids)
    cos, sin = body.rotary_emb(hidden, steps[None])
    keys, values = [], []
    layers = _layers(body, num_layers)
    for index, layer in enumerate(layers):
        hidden, k, v = _layer(body, model_type, layer, hidden, cos, sin, None,
                              last=index == len(layers) - 1)
        keys.append(k[0])
        values.append(v[0])
    return torch.stack(keys), torch.stack(values)


def continue_from(body: nn.Module, model_type: str, input_ids, attention_mask, keys, values,
                  num_layers: int | None = None):
    """The final hidden states [B, T, H] of right-padded remainders [B, T] after the prefix whose
    keys and values are given."""
    mask = attention_mask.to(torch.long)
    steps = torch.ones_like(mask[0]).cumsum(0) - 1
    prefix = torch.ones_like(keys[0, 0, :, 0], dtype=torch.long)  # one per prefix position
    positions = (mask.cumsum(1) - 1).clamp(min=0) + prefix.sum()
    hidden = _embed(body, model_type, input_ids)
    cos, sin = body.rotary_emb(hidden, positions)
    # Right padding: a real token sees the prefix and its row's tokens up to itself, never the
    # padding after them, so one mask serves the batch.
    own = steps[None, :] <= steps[:, None]
    seen = (prefix[None, :] > 0).expand(mask.shape[1], -1)
    bias = additive_mask(torch.cat([seen, own], dim=-1)[None, None], hidden.dtype)
    for index, layer in enumerate(_layers(body, num_layers)):
        hidden, _, _ = _layer(body, model_type, layer, hidden, cos, sin, bias,
                              keys[index][None], values[index][None])
    return body.norm(hidden)
