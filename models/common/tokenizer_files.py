"""The tokenizer of a published directory, copied into a bundle as the engine reads it.

tokenizer.json (Hugging Face tokenizers' format, what AutoTokenizer loads fast) is preferred:
the engine's reader (engine/text, kind tokenizer_json) runs every model type it holds. A
directory with only vocab.txt gets the engine's WordPiece (kind wordpiece), with the options of
its tokenizer_config.json. The special tokens by name go into the manifest's tokenizer options,
so that the engine resolves the same ids transformers does.

``lowercase_text`` is sentence_bert_config.json's ``do_lower_case``, which sentence-transformers
(5.x) carries out by putting tokenizers' Lowercase normalizer first in the fast tokenizer's
normalizer; the bundle's tokenizer.json gets the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from models.common.bundle import atomic_copy, atomic_write_bytes
from models.common.json_files import read_json

_SPECIAL_NAMES = ("pad", "unk", "bos", "eos", "mask", "cls", "sep")


@dataclass
class BundleTokenizer:
    manifest: dict           # engine.json "tokenizer"
    special_tokens: dict     # engine.json "special_tokens": name -> id
    vocab_size: int          # every id the tokenizer makes, added tokens included
    first_ordinary_id: int   # ids from here on are ordinary text pieces (for check batches)


def _lowercased_first(tokenizer_json: Path) -> str:
    """tokenizer.json's text with a Lowercase normalizer put before its own, unless that is one
    or a sequence holding one (sentence-transformers' Transformer module does the same)."""
    data = read_json(tokenizer_json)
    normalizer = data.get("normalizer")
    steps = []
    if normalizer is not None:
        steps = normalizer["normalizers"] if normalizer["type"] == "Sequence" else [normalizer]
    if not any(step.get("type") == "Lowercase" for step in steps):
        data["normalizer"] = {"type": "Sequence", "normalizers": [{"type": "Lowercase"}, *steps]}
    return json.dumps(data, ensure_ascii=False)


def bundle_tokenizer(directory: Path, out: Path, config,
                     lowercase_text: bool = False) -> BundleTokenizer:
    from transformers import AutoTokenizer  # noqa: PLC0415

    tokenizer = AutoTokenizer.from_pretrained(directory)
    specials = {}
    names = {}
    for name in _SPECIAL_NAMES:
        token = getattr(tokenizer, f"{name}_token", None)
        if token is not None:
            names[f"{name}_token"] = str(token)
            specials[name] = int(tokenizer.convert_tokens_to_ids(str(token)))
    if "pad" not in specials:
        # Decoders such as Qwen2 may name no pad token: padding is masked, so any id serves; the
        # end-of-text token is what their embedding recipes pad with.
        pad = getattr(config, "pad_token_id", None)
        if pad is None:
            pad = specials.get("eos", getattr(config, "eos_token_id", None))
        if pad is None:
            raise ValueError(f"{directory}: the tokenizer names no pad token and config.json no "
                             "pad_token_id or eos_token_id")
        specials["pad"] = int(pad[0] if isinstance(pad, list) else pad)
    vocab_size = len(tokenizer)
    low = [i for i in specials.values() if i < vocab_size // 2]
    first_ordinary = max(low) + 1 if low else 0

    if (directory / "tokenizer.json").is_file():
        if lowercase_text:
            text = _lowercased_first(directory / "tokenizer.json")
            atomic_write_bytes(out / "tokenizer.json",
                               lambda path: path.write_text(text, encoding="utf-8"))
        else:
            atomic_copy(directory / "tokenizer.json", out / "tokenizer.json")
        manifest = {"kind": "tokenizer_json", "file": "tokenizer.json", **names}
    elif (directory / "vocab.txt").is_file():
        atomic_copy(directory / "vocab.txt", out / "vocab.txt")
        settings = {}
        if (directory / "tokenizer_config.json").is_file():
            settings = read_json(directory / "tokenizer_config.json")
        lowercase = bool(settings.get("do_lower_case", True))
        if lowercase_text and not lowercase:
            # The engine's WordPiece lower-cases only as BERT does, stripping accents with it.
            raise ValueError(f"{directory}: do_lower_case asks for the text lower-cased before a "
                             "cased vocab.txt tokenizer; the bundle can do that only through a "
                             "tokenizer.json, and this directory has none")
        manifest = {"kind": "wordpiece", "file": "vocab.txt", "lowercase": lowercase,
                    "strip_accents": settings.get("strip_accents"),
                    "tokenize_chinese_chars": bool(settings.get("tokenize_chinese_chars", True))}
    else:
        raise FileNotFoundError(f"{directory}: neither tokenizer.json nor vocab.txt")
    return BundleTokenizer(manifest=manifest, special_tokens=specials, vocab_size=vocab_size,
                           first_ordinary_id=first_ordinary)


def random_rows(gen: torch.Generator, lengths: list[int], tokenizer: BundleTokenizer,
                token_types: bool):
    """Right-padded rows of ordinary ids, the exporters' check batches: (input_ids,
    attention_mask[, token_type_ids of zeros]). No row holds the pad id: RoBERTa counts
    positions from the ids that are not pad."""
    pad_id = tokenizer.special_tokens["pad"]
    width = max(lengths)
    ids = torch.full((len(lengths), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, n in enumerate(lengths):
        body = torch.randint(tokenizer.first_ordinary_id, tokenizer.vocab_size, (n,),
                             generator=gen)
        body[body == pad_id] = tokenizer.first_ordinary_id
        ids[row, :n] = body
        mask[row, :n] = 1
    return (ids, mask, torch.zeros_like(ids)) if token_types else (ids, mask)
