"""Which exporter (models/<family>/export.py) a published directory needs, from its own files:
``tools/export.py --checkpoint DIR`` without ``--family``.

The rules, first match wins:
  configuration.json (ModelScope)                                  -> structbert
  config_sentence_transformers.json model_type CrossEncoder        -> cross_encoder
  modules.json (sentence-transformers)                             -> embedder
  sparse_linear.pt and colbert_linear.pt beside config.json        -> bge_m3
  config.json architectures *ForCausalLM of a decoder llm_reranker traces -> llm_reranker
  config.json architectures *ForSequenceClassification             -> cross_encoder
  config.json model_type an encoder or decoder the embedder traces -> embedder
"""

from __future__ import annotations

from pathlib import Path

from models.common.backbones import BACKBONES
from models.common.json_files import read_json

# The decoders models/llm_reranker/export.py traces (its _SUPPORTED_TYPES; kept here so that
# inferring a family imports no exporter).
LLM_RERANKER_TYPES = ("gemma", "gemma2", "qwen2", "qwen3", "llama", "mistral", "minicpm")



def infer_family(directory) -> tuple[str, str]:
    """(family, why) for ``directory``; raises ValueError saying what was found."""
    directory = Path(directory)
    if (directory / "configuration.json").is_file():
        return "structbert", "configuration.json (ModelScope layout)"
    settings = directory / "config_sentence_transformers.json"
    if settings.is_file() and read_json(settings).get("model_type") == "CrossEncoder":
        return "cross_encoder", "config_sentence_transformers.json says CrossEncoder"
    if (directory / "modules.json").is_file():
        return "embedder", "modules.json (sentence-transformers)"
    if not (directory / "config.json").is_file():
        raise ValueError(f"{directory}: no config.json, modules.json or configuration.json; "
                         "not a published model directory")
    config = read_json(directory / "config.json")
    model_type = config.get("model_type")
    architectures = config.get("architectures") or []
    if (directory / "sparse_linear.pt").is_file() and (directory / "colbert_linear.pt").is_file():
        return "bge_m3", "sparse_linear.pt and colbert_linear.pt (BGE-M3)"
    if model_type in LLM_RERANKER_TYPES and any(a.endswith("ForCausalLM") for a in architectures):
        return "llm_reranker", f"{model_type} {architectures[0]}"
    if any(a.endswith("ForSequenceClassification") for a in architectures):
        return "cross_encoder", f"{architectures[0]}"
    if model_type in BACKBONES:
        return "embedder", f"model_type {model_type} ({', '.join(architectures) or 'no head'})"
    raise ValueError(f"{directory}/config.json: model_type {model_type!r} with architectures "
                     f"{architectures} is not a model any exporter here takes; pass --family to "
                     "say which, or see docs/models.md")
