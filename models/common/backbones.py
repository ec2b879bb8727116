"""The architectures the encoder exporters trace (models/embedder, models/cross_encoder's
published path), by config.json's model_type: the one place that knows how to trace each.

Adding an architecture that transformers' AutoModel classes load is one entry here, and a tiny
checkpoint for its parity test (docs/adding-a-model.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from models.common.json_files import read_json


@dataclass(frozen=True)
class Backbone:
    token_types: bool = False      # its forward takes token_type_ids
    causal: bool = False           # a decoder: the graph builds its causal and padding mask
    attention: str = "sdpa"        # transformers' attn_implementation the trace is checked with
    position_offset: bool = False  # RoBERTa-style: positions start after the pad id


BACKBONES = {
    "bert": Backbone(token_types=True),
    "xlm-roberta": Backbone(token_types=True, position_offset=True),
    "roberta": Backbone(token_types=True, position_offset=True),
    "modernbert": Backbone(attention="eager"),
    "qwen3": Backbone(causal=True),
    "qwen2": Backbone(causal=True),
}


def backbone_kind(directory: Path) -> str:
    """config.json's model_type, when BACKBONES has it; else ValueError naming what is. A
    directory that ships its own modeling code for the model (config.json's auto_map) is refused
    too: transformers' stock class of the same model_type may compute something else (attention
    made bidirectional, another pooling), and tracing it would give vectors silently wrong."""
    path = Path(directory) / "config.json"
    config = read_json(path)
    model_type = config.get("model_type")
    remote = {k: v for k, v in (config.get("auto_map") or {}).items() if k.startswith("AutoModel")}
    if remote:
        raise ValueError(f"{path}: the directory brings its own modeling code ({remote}); these "
                         "exporters trace transformers' own classes only, which for model_type "
                         f"{model_type!r} may not be what that code computes")
    if model_type not in BACKBONES:
        raise ValueError(f"{path}: model_type {model_type!r} is not an architecture these "
                         f"exporters trace (supported: {sorted(BACKBONES)})")
    return model_type
