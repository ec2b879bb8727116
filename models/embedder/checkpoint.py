"""What a published embedder directory says about itself, read from its own files.

sentence-transformers directories: modules.json lists the modules in order (a Transformer, then
Pooling, Dense and Normalize); each module's folder holds its config (1_Pooling/config.json,
2_Dense/config.json with its weights); config_sentence_transformers.json holds the prompts, the
default prompt and the similarity function; sentence_bert_config.json the max_seq_length. A bare
Hugging Face encoder (config.json and weights only) is read as SentenceTransformer reads it: mean
pooling, no Dense, not normalised.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from models.common.json_files import read_json

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
# Pooling's older config: one flag per mode, concatenated in this order when several are set.
_LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
SIMILARITIES = ("cosine", "dot")


@dataclass
class DenseLayer:
    path: Path
    in_features: int
    out_features: int
    activation: str
    weight: torch.Tensor
    bias: torch.Tensor | None


@dataclass
class SentenceModules:
    transformer_path: Path
    from_modules_json: bool
    pooling_modes: tuple[str, ...] = ("mean",)
    include_prompt: bool = True
    dense: list[DenseLayer] = field(default_factory=list)
    normalize: bool = False
    max_seq_length: int | None = None
    do_lower_case: bool = False
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    similarity: str = "cosine"


def _module_class(entry: dict) -> str:
    # "sentence_transformers.models.Pooling" or, from 5.x, the module's full path.
    return str(entry.get("type", "")).rsplit(".", 1)[-1]


def _pooling_modes(config: dict, where: Path) -> tuple[str, ...]:
    mode = config.get("pooling_mode")
    if mode is not None:
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
    else:
        modes = tuple(name for key, name in _LEGACY_POOLING_KEYS.items() if config.get(key))
    if not modes:
        raise ValueError(f"{where}: no pooling mode is set")
    for mode in modes:
        if mode not in POOLING_MODES:
            raise ValueError(f"{where}: pooling mode {mode!r} is not one of {POOLING_MODES}")
    return modes


def _dense_layer(folder: Path) -> DenseLayer:
    config = read_json(folder / "config.json")
    if (folder / "model.safetensors").is_file():
        from safetensors.torch import load_file  # noqa: PLC0415

        state = load_file(str(folder / "model.safetensors"))
    elif (folder / "pytorch_model.bin").is_file():
        state = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    else:
        raise FileNotFoundError(f"{folder}: a Dense module without model.safetensors or "
                                "pytorch_model.bin")
    weight = state.get("linear.weight")
    if weight is None:
        raise ValueError(f"{folder}: no linear.weight among {sorted(state)}")
    return DenseLayer(
        path=folder,
        in_features=int(config.get("in_features", weight.shape[1])),
        out_features=int(config.get("out_features", weight.shape[0])),
        activation=config.get("activation_function", "torch.nn.modules.activation.Tanh"),
        weight=weight.float(), bias=state.get("linear.bias"))


def read_sentence_modules(directory: Path) -> SentenceModules:
    """The modules of ``directory``; raises ValueError naming a module it cannot export."""
    directory = Path(directory)
    modules_file = directory / "modules.json"
    if not modules_file.is_file():
        if not (directory / "config.json").is_file():
            raise FileNotFoundError(f"{directory}: neither modules.json (sentence-transformers) "
                                    "nor config.json (transformers)")
        return SentenceModules(transformer_path=directory, from_modules_json=False)
    entries = sorted(read_json(modules_file), key=lambda entry: int(entry.get("idx", 0)))
    if not entries or _module_class(entries[0]) != "Transformer":
        raise ValueError(f"{modules_file}: the first module must be a Transformer")
    transformer = directory / entries[0].get("path", "")
    result = SentenceModules(transformer_path=transformer, from_modules_json=True)
    result.pooling_modes = ()
    for config_name in ("sentence_bert_config.json",):
        for folder in (transformer, directory):
            if (folder / config_name).is_file():
                bert_config = read_json(folder / config_name)
                result.max_seq_length = bert_config.get("max_seq_length")
                result.do_lower_case = bool(bert_config.get("do_lower_case", False))
                break
    for entry in entries[1:]:
        name, folder = _module_class(entry), directory / entry.get("path", "")
        if name == "Pooling":
            if result.pooling_modes:
                raise ValueError(f"{modules_file}: more than one Pooling module")
            config = read_json(folder / "config.json")
            result.pooling_modes = _pooling_modes(config, folder / "config.json")
            result.include_prompt = bool(config.get("include_prompt", True))
        elif name == "Dense":
            result.dense.append(_dense_layer(folder))
        elif name == "Normalize":
            result.normalize = True
        else:
            raise ValueError(f"{modules_file}: module {entry.get('type')!r} ({entry.get('path')})"
                             " is not one this exporter traces (Transformer, Pooling, Dense, "
                             "Normalize)")
    if not result.pooling_modes:
        raise ValueError(f"{modules_file}: no Pooling module after the Transformer")
    if not result.include_prompt:
        raise ValueError(f"{folder}: include_prompt false (prompt tokens left out of the pooling)"
                         " is not exported yet")
    settings_file = directory / "config_sentence_transformers.json"
    if settings_file.is_file():
        settings = read_json(settings_file)
        result.prompts = {k: v for k, v in (settings.get("prompts") or {}).items() if v}
        result.default_prompt_name = settings.get("default_prompt_name")
        similarity = settings.get("similarity_fn_name") or "cosine"
        if similarity not in SIMILARITIES:
            raise ValueError(f"{settings_file}: similarity_fn_name {similarity!r} is not one of "
                             f"{SIMILARITIES}")
        result.similarity = similarity
    return result
