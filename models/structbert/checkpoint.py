"""Read BERT / StructBERT checkpoints in ModelScope's or HuggingFace's layout.

ModelScope layout (e.g. iic/nlp_structbert_sentence-similarity_chinese-large),
as ModelScope 1.40.2 reads and writes it:

  configuration.json  ModelScope's own config: {"framework", "task",
                      "model": {"type": "structbert", ...}, "preprocessor":
                      {"type": "sen-sim-tokenizer", ...}, "pipeline": {...}}
  config.json         SbertConfig (a BertConfig with model_type "structbert"
                      and extra adversarial-training keys), id2label/label2id
  pytorch_model.bin   a bare state_dict of SbertForSequenceClassification:
                      ``bert.embeddings.*``, ``bert.encoder.layer.N.*``,
                      ``bert.pooler.dense.*``, ``classifier.*`` (the same names
                      as HF's BertForSequenceClassification) plus the buffer
                      ``bert.embeddings.position_ids``, which SbertEmbeddings
                      registers as persistent
  vocab.txt           BERT WordPiece vocabulary
  label_mapping.json  optional; label -> id, takes precedence for labels

HuggingFace layout: config.json (model_type "bert"), model.safetensors or
pytorch_model.bin (with or without the ``bert.`` prefix), vocab.txt and
optionally tokenizer_config.json.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification, BertModel

from models.common.wordpiece_vocab import read_vocab

VOCAB_FILE = "vocab.txt"
MS_CONFIGURATION = "configuration.json"
MS_LABEL_MAPPING = "label_mapping.json"
KINDS = ("cross_encoder", "bi_encoder")
_MODEL_TYPES = {"bert", "structbert"}
_SPECIAL_STRINGS = {"cls": "[CLS]", "sep": "[SEP]", "pad": "[PAD]", "unk": "[UNK]",
                    "mask": "[MASK]"}
# Buffers some checkpoints carry and the HF model rebuilds itself (non-persistent there).
_HARMLESS = re.compile(r"(^|\.)embeddings\.(position_ids|token_type_ids)$")
# Heads a bi-encoder export leaves out: the pooler, a classifier, pre-training heads.
_HEADS = re.compile(r"^(bert\.pooler\.|classifier\.|cls\.)")


@dataclass
class Checkpoint:
    path: Path
    layout: str                     # "modelscope" or "huggingface"
    config: BertConfig
    config_model_type: str          # as written in config.json ("structbert", "bert")
    state_dict: dict                # canonical names: "bert.*", "classifier.*", ...
    labels: list[str]               # label names by id (HF's LABEL_i if there is no mapping)
    tokenizer: dict                 # lowercase, strip_accents, tokenize_chinese_chars, use_fast
    vocab: dict[str, int]
    default_max_length: int
    notes: list[str] = field(default_factory=list)

    def special_ids(self) -> dict[str, int]:
        """{cls, sep, pad, unk, mask} -> vocabulary id (read_checkpoint checked all exist)."""
        return {name: self.vocab[text] for name, text in _SPECIAL_STRINGS.items()}


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _labels(ckpt: Path, ms_cfg: dict | None, cfg: dict) -> list[str] | None:
    """Label names by id, in ModelScope's order of precedence
    (modelscope/utils/hub.py parse_label_mapping): label_mapping.json,
    configuration.json model.label2id / model.id2label, preprocessor.label2id /
    preprocessor.id2label, then config.json label2id / id2label."""
    label2id = None
    if (ckpt / MS_LABEL_MAPPING).is_file():
        label2id = _read_json(ckpt / MS_LABEL_MAPPING)
    sources = []
    if ms_cfg is not None:
        sources += [ms_cfg.get("model") or {}, ms_cfg.get("preprocessor") or {}]
    sources.append(cfg)
    for src in sources:
        if label2id is not None:
            break
        if src.get("label2id"):
            label2id = src["label2id"]
        elif src.get("id2label"):
            label2id = {name: i for i, name in src["id2label"].items()}
    if label2id is None:
        return None
    by_id = {int(i): str(name) for name, i in label2id.items()}
    if sorted(by_id) != list(range(len(by_id))):
        raise ValueError(f"{ckpt}: label ids {sorted(by_id)} are not 0..{len(by_id) - 1}")
    return [by_id[i] for i in range(len(by_id))]


def _load_weights(ckpt: Path) -> dict:
    if (ckpt / "model.safetensors").is_file():
        from safetensors.torch import load_file
        return load_file(str(ckpt / "model.safetensors"))
    if (ckpt / "pytorch_model.bin").is_file():
        state = torch.load(ckpt / "pytorch_model.bin", map_location="cpu", weights_only=True)
        # ModelScope's save_checkpoint(with_meta=True) nests the weights.
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        return dict(state)
    raise FileNotFoundError(f"{ckpt}: no model.safetensors or pytorch_model.bin")


def canonical_keys(state: dict, base_prefix: str = "bert") -> dict:
    """Rename weights to HF BertForSequenceClassification's names.

    Handles a DataParallel ``module.`` prefix, TF-era LayerNorm ``gamma``/``beta``,
    a ``base_model_prefix`` other than ``bert`` (SbertForSequenceClassification
    takes it from config.json when present) and bare BertModel checkpoints
    whose keys have no prefix at all.
    """
    out = {}
    for key, value in state.items():
        k = key[len("module."):] if key.startswith("module.") else key
        k = re.sub(r"LayerNorm\.gamma$", "LayerNorm.weight", k)
        k = re.sub(r"LayerNorm\.beta$", "LayerNorm.bias", k)
        if base_prefix != "bert" and k.startswith(base_prefix + "."):
            k = "bert." + k[len(base_prefix) + 1:]
        if k.split(".", 1)[0] in ("embeddings", "encoder", "pooler"):
            k = "bert." + k
        if k in out:
            raise ValueError(f"two checkpoint tensors map to {k!r}")
        out[k] = value
    return out


def read_checkpoint(checkpoint_dir) -> Checkpoint:
    ckpt = Path(checkpoint_dir).resolve()
    if not (ckpt / "config.json").is_file():
        raise FileNotFoundError(f"{ckpt}: no config.json")
    if not (ckpt / VOCAB_FILE).is_file():
        raise FileNotFoundError(f"{ckpt}: no {VOCAB_FILE}; only WordPiece BERT tokenizers are "
                                "supported for this family")
    ms_cfg = _read_json(ckpt / MS_CONFIGURATION) if (ckpt / MS_CONFIGURATION).is_file() else None
    layout = "modelscope" if ms_cfg is not None else "huggingface"
    notes = []
    if ms_cfg is not None:
        model_cfg = ms_cfg.get("model") or {}
        ms_type = (model_cfg.get("backbone") or {}).get("type") or model_cfg.get("type") \
            or model_cfg.get("model_type")
        if ms_type not in _MODEL_TYPES:
            raise ValueError(f"{ckpt}/{MS_CONFIGURATION}: model type {ms_type!r} is not one of "
                             f"{sorted(_MODEL_TYPES)}")

    raw = _read_json(ckpt / "config.json")
    model_type = raw.get("model_type", "bert")
    if model_type not in _MODEL_TYPES:
        raise ValueError(f"{ckpt}/config.json: model_type {model_type!r} is not one of "
                         f"{sorted(_MODEL_TYPES)}")
    if raw.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{ckpt}: position_embedding_type "
                         f"{raw['position_embedding_type']!r} is not supported")
    labels = _labels(ckpt, ms_cfg, raw)
    base_prefix = raw.get("base_model_prefix", "bert")
    clean = {k: v for k, v in raw.items()
             if k not in ("model_type", "architectures", "id2label", "label2id",
                          "base_model_prefix", "transformers_version")}
    if labels is not None:
        clean["id2label"] = dict(enumerate(labels))
    config = BertConfig.from_dict(clean)
    config._attn_implementation = "eager"

    tok_cfg = {}
    if (ckpt / "tokenizer_config.json").is_file():
        tok_cfg = _read_json(ckpt / "tokenizer_config.json")
    for name, text in _SPECIAL_STRINGS.items():
        got = tok_cfg.get(f"{name}_token", text)
        got = got.get("content") if isinstance(got, dict) else got
        if got != text:
            raise ValueError(f"{ckpt}: {name}_token {got!r} differs from {text!r}; unsupported")
    tokenizer = {
        "lowercase": bool(tok_cfg.get("do_lower_case", True)),
        "strip_accents": tok_cfg.get("strip_accents"),
        "tokenize_chinese_chars": bool(tok_cfg.get("tokenize_chinese_chars", True)),
        # NLPTokenizer picks BertTokenizerFast only when tokenizer_config.json says so.
        "use_fast": bool(tok_cfg.get("use_fast", False)),
    }
    vocab = read_vocab(ckpt / VOCAB_FILE)
    missing = [t for t in _SPECIAL_STRINGS.values() if t not in vocab]
    if missing:
        raise ValueError(f"{ckpt}/{VOCAB_FILE}: missing special tokens {missing}")
    if max(vocab.values()) >= config.vocab_size:
        raise ValueError(f"{ckpt}: {VOCAB_FILE} has {max(vocab.values()) + 1} lines but the "
                         f"embedding has {config.vocab_size} rows")

    max_length = min(512, config.max_position_embeddings)
    if ms_cfg is not None:
        # TextClassificationPipeline passes sequence_length=512 to the
        # preprocessor; a max_length in configuration.json's preprocessor
        # section takes precedence over it.
        pre = ms_cfg.get("preprocessor") or {}
        if "type" not in pre and isinstance(pre.get("val"), dict):
            pre = pre["val"]
        if pre.get("max_length"):
            max_length = min(int(pre["max_length"]), config.max_position_embeddings)
            notes.append(f"max_length {max_length} from {MS_CONFIGURATION} preprocessor")

    state = canonical_keys(_load_weights(ckpt), base_prefix)
    if labels is None:
        # HF's own fallback names; the count from the classifier if there is one.
        cls_w = state.get("classifier.weight")
        n = cls_w.shape[0] if cls_w is not None else config.num_labels
        labels = [f"LABEL_{i}" for i in range(n)]
        config.id2label = dict(enumerate(labels))
        notes.append(f"no label mapping in the checkpoint; labels named {labels}")
    pos = state.get("bert.embeddings.position_ids")
    if pos is not None and not torch.equal(pos.reshape(-1).long(),
                                           torch.arange(pos.numel())):
        raise ValueError(f"{ckpt}: bert.embeddings.position_ids is not 0..N-1; ModelScope would "
                         "use it as stored, HF ignores it")
    return Checkpoint(ckpt, layout, config, model_type, state, labels, tokenizer, vocab,
                      max_length, notes)


def build_model(ck: Checkpoint, kind: str,
                attention: str = "eager") -> tuple[torch.nn.Module, list[str]]:
    """The HF model for ``kind`` with the checkpoint's weights loaded strictly.

    ``attention`` is transformers' attention implementation: "eager" (what
    ModelScope runs, and the reference's choice) or "sdpa" (the exporter's:
    one fused call per layer, docs/speed.md).

    cross_encoder: BertForSequenceClassification; bi_encoder: BertModel
    without pooler.  Returns (model in eval mode, checkpoint keys left unused).
    Fails on any missing weight and on any unused one other than the
    position/token-type id buffers and, for bi_encoder, the heads.
    """
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} must be one of {KINDS}")
    if attention not in ("eager", "sdpa"):
        raise ValueError(f"attention {attention!r} must be 'eager' or 'sdpa'")
    config = BertConfig.from_dict(ck.config.to_dict())
    config._attn_implementation = attention
    config.torchscript = True  # tuple outputs
    if kind == "cross_encoder":
        cls_w = ck.state_dict.get("classifier.weight")
        if cls_w is not None and cls_w.shape[0] != len(ck.labels):
            raise ValueError(f"{ck.path}: classifier has {cls_w.shape[0]} outputs but "
                             f"{len(ck.labels)} labels are configured")
        model = BertForSequenceClassification(config)
        state = dict(ck.state_dict)
    else:
        model = BertModel(config, add_pooling_layer=False)
        state = {k[len("bert."):]: v for k, v in ck.state_dict.items()
                 if k.startswith("bert.") and not _HEADS.match(k)}
    unused = sorted(k for k in ck.state_dict if _HARMLESS.search(k)
                    or (kind == "bi_encoder" and (not k.startswith("bert.") or _HEADS.match(k))))
    state = {k: v for k, v in state.items() if not _HARMLESS.search(k)}
    expected = set(model.state_dict())
    missing = sorted(expected - set(state))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(f"{ck.path}: weights do not match {type(model).__name__}: "
                         f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
                         f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}")
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.eval(), unused
