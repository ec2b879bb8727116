"""Tiny random embedders laid out as published ones: a tiny encoder or decoder of the real
architecture (models/common/tiny_encoders.py) with random weights, and the sentence-transformers
modules saved by sentence-transformers itself (modules.json, 1_Pooling, 2_Dense, Normalize,
config_sentence_transformers.json with prompts)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

from models.common.bundle import spread_weights, write_tiny_marker
from models.common.tiny_encoders import ARCHITECTURES, tiny_config

# The instruction Qwen3-Embedding's config_sentence_transformers.json puts before queries.
QWEN3_QUERY_PROMPT = ("Instruct: Given a web search query, retrieve relevant passages that "
                      "answer the query\nQuery:")


def _backbone(architecture: str, directory: Path, seed: int, **sizes) -> None:
    from transformers import AutoModel  # noqa: PLC0415

    config = tiny_config(architecture, directory, **sizes)
    torch.manual_seed(seed)
    model = AutoModel.from_config(config).eval()
    spread_weights(model, seed)
    model.save_pretrained(directory, safe_serialization=True)


def write_tiny_sentence_transformer(out_dir, seed: int = 0, architecture: str = "bert",
                                    pooling: str = "cls", dense: int = 0, normalize: bool = True,
                                    prompts: dict | None = None, hidden: int = 32,
                                    layers: int = 2, heads: int = 4, max_positions: int = 512,
                                    tokenizer_json: bool = True,
                                    do_lower_case: bool = False) -> Path:
    """A sentence-transformers directory at ``out_dir``; ``dense`` > 0 adds a Dense module to
    that many dimensions (tanh), ``prompts`` the query/passage prompts. ``tokenizer_json``
    false leaves out tokenizer.json, as older checkpoints with only vocab.txt are;
    ``do_lower_case`` has the Transformer module lower-case texts before the tokenizer."""
    from sentence_transformers import SentenceTransformer, models  # noqa: PLC0415

    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture {architecture!r} is not one of {ARCHITECTURES}")
    out = Path(out_dir).resolve()
    with tempfile.TemporaryDirectory() as scratch:
        backbone = Path(scratch) / "backbone"
        backbone.mkdir()
        _backbone(architecture, backbone, seed, hidden=hidden, layers=layers, heads=heads,
                  max_positions=max_positions)
        transformer = models.Transformer(str(backbone), max_seq_length=max_positions,
                                         do_lower_case=do_lower_case)
        modules = [transformer, models.Pooling(hidden, pooling_mode=pooling)]
        if dense:
            torch.manual_seed(seed + 1)
            modules.append(models.Dense(hidden, dense, activation_function=torch.nn.Tanh()))
        if normalize:
            modules.append(models.Normalize())
        model = SentenceTransformer(modules=modules, device="cpu",
                                    prompts=prompts or {}, similarity_fn_name="cosine")
        if out.exists():
            shutil.rmtree(out)
        model.save(str(out))
        if do_lower_case:
            # sentence-transformers 5 saves do_lower_case as a Lowercase normalizer inside
            # tokenizer.json; the directories published with 2.x-4.x say it in
            # sentence_bert_config.json over an unchanged tokenizer, as written here.
            shutil.copyfile(backbone / "tokenizer.json", out / "tokenizer.json")
            (out / "sentence_bert_config.json").write_text(json.dumps(
                {"max_seq_length": max_positions, "do_lower_case": True}, indent=2))
    if not tokenizer_json:
        (out / "tokenizer.json").unlink()
    write_tiny_marker(out, {"seed": seed, "architecture": architecture, "pooling": pooling,
                            "dense": dense, "normalize": normalize, "hidden": hidden,
                            "layers": layers, "max_positions": max_positions,
                            "do_lower_case": do_lower_case})
    return out
