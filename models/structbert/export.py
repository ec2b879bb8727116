"""Export BERT / StructBERT checkpoints (WordPiece vocab) to an engine bundle.

Target: iic/nlp_structbert_sentence-similarity_chinese-large (BERT-large,
vocab 21128, a 2-label classifier on the pooled output, published in
ModelScope's layout; ModelScope's pipeline reports softmax(logits)) and plain
HuggingFace BERT checkpoints.  See ``checkpoint.py`` for the layouts.

Two kinds of bundle:
  cross_encoder  forward(input_ids, attention_mask, token_type_ids) int64 [B, T]
                 -> logits float32 [B, num_labels] (BertForSequenceClassification)
  bi_encoder     same inputs -> last_hidden_state float32 [B, T, H] (BertModel
                 without pooler); the engine mean-pools over the attention mask

A bundle directory contains model.pt (TorchScript), vocab.txt and engine.json.
``write_tiny_checkpoint`` writes a tiny random checkpoint in ModelScope's
layout for tests.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification

from models.common.bundle import embedding_scale_name
from models.common.bundle import (TRACE_TOL, atomic_copy, atomic_write_bytes, check_lengths,
                                  classifier_heads, compare_with_eager, dtype_fields,
                                  encoder_architecture, FirstOutput, manifest_header,
                                  resolve_max_length, save_verified_trace, source_block,
                                  spread_weights, write_manifest, write_tiny_marker)
from models.common.wordpiece_vocab import read_vocab, write_vocab
from models.structbert.checkpoint import (KINDS, MS_CONFIGURATION, VOCAB_FILE, Checkpoint,
                                          build_model, read_checkpoint)

# ModelScope's sentence-similarity models label 0 "not similar", 1 "similar";
# the pipeline returns these names with the softmax probabilities.
MS_ID2LABEL = {0: "0", 1: "1"}


# --------------------------------------------------------------------------
# Tiny checkpoint (ModelScope layout)
# --------------------------------------------------------------------------

# Published sizes for ``tools/export.py --tiny --shape`` (random weights, small vocabulary file).
TINY_SHAPES = {
    "structbert-large": dict(hidden=1024, layers=24, heads=16, intermediate=4096,
                             table_rows=21128),
}


def write_tiny_checkpoint(out_dir, seed: int = 0, hidden: int = 32, layers: int = 2,
                          heads: int = 4, intermediate: int = 64,
                          max_positions: int = 512, table_rows: int = 0) -> Path:
    """Write a small random StructBERT sentence-similarity checkpoint laid out
    as ModelScope publishes and saves them: configuration.json, config.json
    (model_type "structbert"), pytorch_model.bin (a bare state_dict with
    SbertForSequenceClassification's names, position_ids buffer included) and
    vocab.txt (``models.common.wordpiece_vocab``)."""
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    write_vocab(out / VOCAB_FILE)
    vocab_size = len(read_vocab(out / VOCAB_FILE))

    config = BertConfig(
        vocab_size=max(vocab_size, table_rows), hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=intermediate,
        max_position_embeddings=max_positions, type_vocab_size=2, pad_token_id=0,
        id2label=dict(MS_ID2LABEL),
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    spread_weights(model, seed)

    # SbertEmbeddings registers position_ids as a persistent buffer: it is
    # saved, and first in the embeddings' section (own buffers precede children).
    state = OrderedDict()
    state["bert.embeddings.position_ids"] = torch.arange(max_positions).expand((1, -1)).clone()
    for k, v in model.state_dict().items():
        state[k] = v.detach().clone().contiguous()
    atomic_write_bytes(out / "pytorch_model.bin", lambda p: torch.save(state, p))

    # The BERT keys explicitly, plus what save_pretrained would add (no
    # generation defaults such as "max_length": 20, which would only confuse).
    full = config.to_dict()
    cfg = {k: full[k] for k in (
        "attention_probs_dropout_prob", "classifier_dropout", "hidden_act", "hidden_dropout_prob",
        "hidden_size", "initializer_range", "intermediate_size", "layer_norm_eps",
        "max_position_embeddings", "num_attention_heads", "num_hidden_layers", "pad_token_id",
        "position_embedding_type", "type_vocab_size", "use_cache", "vocab_size")}
    cfg.update({
        "model_type": "structbert",
        "architectures": ["SbertForSequenceClassification"],
        "id2label": {str(i): n for i, n in MS_ID2LABEL.items()},
        "label2id": {n: i for i, n in MS_ID2LABEL.items()},
        # SbertConfig's adversarial-training defaults, saved with every config.
        "adv_grad_factor": 5e-5, "sigma": 5e-6, "adv_bound": 1e-5,
    })
    (out / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    ms_cfg = {
        "framework": "pytorch",
        "task": "sentence-similarity",
        "model": {"type": "structbert"},
        "pipeline": {"type": "sentence-similarity"},
        "preprocessor": {"type": "sen-sim-tokenizer", "first_sequence": "first_sequence",
                         "second_sequence": "second_sequence"},
    }
    (out / MS_CONFIGURATION).write_text(json.dumps(ms_cfg, indent=4) + "\n")
    write_tiny_marker(out, {
        "seed": seed, "vocab_size": vocab_size, "hidden": hidden, "layers": layers,
        "heads": heads, "intermediate": intermediate, "max_positions": max_positions,
        "num_labels": len(MS_ID2LABEL)})
    return out


# --------------------------------------------------------------------------
# Bundle export
# --------------------------------------------------------------------------

def _bert_batch(gen: torch.Generator, lengths: list[int], vocab_size: int, ids: dict,
                pairs: bool):
    """Rows ``[CLS] a [SEP] b [SEP]`` (pairs, token types 0/1) or ``[CLS] a [SEP]``,
    right-padded with [PAD]; body ids avoid the specials and [unused*] slots."""
    width = max(lengths)
    input_ids = torch.full((len(lengths), width), ids["pad"], dtype=torch.long)
    mask = torch.zeros_like(input_ids)
    types = torch.zeros_like(input_ids)
    for row, n in enumerate(lengths):
        body = torch.randint(106, vocab_size, (n,), generator=gen)
        body[0], body[-1] = ids["cls"], ids["sep"]
        if pairs and n >= 5:
            mid = n // 2
            body[mid] = ids["sep"]
            types[row, mid + 1:n] = 1
        input_ids[row, :n] = body
        mask[row, :n] = 1
    return input_ids, mask, types


@torch.no_grad()
def export_bundle(checkpoint_dir, out_dir, max_length: int | None = None,
                  kind: str | None = None, dtype: str = "fp32",
                  model_format: str = "torchscript") -> Path:
    """Trace ``checkpoint_dir`` as ``kind`` (default cross_encoder) into a
    verified bundle at ``out_dir``.

    ``max_length`` (recorded in engine.json) defaults to what ModelScope's
    sentence-similarity pipeline uses: configuration.json's preprocessor
    max_length if set, else 512 (capped at the position limit).
    """
    t0 = time.time()
    kind = kind or "cross_encoder"
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} must be one of {KINDS}")
    ck: Checkpoint = read_checkpoint(checkpoint_dir)
    out = Path(out_dir).resolve()
    # SDPA attention, as the cross-encoder exporter traces it: while tracing, transformers keeps
    # the padded 4D mask in the graph (no all-ones shortcut), and compare_with_eager checks
    # batches with and without padding against the untraced model.
    model, unused = build_model(ck, kind, attention="sdpa")
    cfg = model.config
    max_positions = cfg.max_position_embeddings
    max_length = resolve_max_length(max_length, ck.default_max_length, max_positions)
    specials = ck.special_ids()

    wrapper = FirstOutput(model).eval()
    gen = torch.Generator().manual_seed(1234)
    pairs = kind == "cross_encoder"
    batch = lambda lengths: _bert_batch(gen, lengths, cfg.vocab_size, specials, pairs)
    checks = check_lengths(max_length)

    def check_output(got, lengths, inputs):
        want = ((len(lengths), cfg.num_labels) if pairs
                else (len(lengths), max(lengths), cfg.hidden_size))
        if tuple(got.shape) != want or got.dtype != torch.float32:
            raise RuntimeError(f"traced output has shape {tuple(got.shape)} {got.dtype}, "
                               f"expected {want} float32")

    # The example is padded, so the mask arithmetic is in the graph.
    model_path, emb_name, worst = save_verified_trace(
        wrapper, batch([11, 7]), out,
        lambda loaded: compare_with_eager(loaded, wrapper, batch, checks, check_output),
        model.get_input_embeddings().weight, dtype=dtype, float32_heads=classifier_heads(model),
        model_format=model_format)
    atomic_copy(ck.path / VOCAB_FILE, out / VOCAB_FILE)

    architecture = encoder_architecture(cfg, model_type="bert")
    if pairs:
        architecture["num_labels"] = cfg.num_labels
        architecture["labels"] = list(ck.labels)
    manifest = {
        **manifest_header(kind, model_path),
        "architecture": architecture,
        "vocab_size": len(ck.vocab),  # the ids the tokenizer makes; the table may be larger
        "max_positions": max_positions,
        "max_length": max_length,
        "special_tokens": specials,
        "tokenizer": {"kind": "wordpiece", "file": VOCAB_FILE,
                      "lowercase": ck.tokenizer["lowercase"],
                      "strip_accents": ck.tokenizer["strip_accents"],
                      "tokenize_chinese_chars": ck.tokenizer["tokenize_chinese_chars"]},
        "inputs": ["input_ids", "attention_mask", "token_type_ids"],
        "outputs": ["logits"] if pairs else ["last_hidden_state"],
        **dtype_fields(dtype),
        "embedding_parameter": emb_name,
        "embedding_scale": embedding_scale_name(emb_name),
    }
    if pairs:
        manifest["pair_truncation"] = "longest_first"
    else:
        manifest["pooling"] = "mean"
    manifest["source"] = source_block(ck.path, layout=ck.layout,
                                      config_model_type=ck.config_model_type,
                                      model_class=type(model).__name__)
    write_manifest(out, manifest)

    print(f"bundle: {out}")
    print(f"  model:      {type(model).__name__} ({ck.layout} layout, model_type "
          f"{ck.config_model_type}) layers={cfg.num_hidden_layers} hidden={cfg.hidden_size} "
          f"heads={cfg.num_attention_heads}" + (f" labels={ck.labels}" if pairs else ""))
    print(f"  vocab:      {len(ck.vocab)} entries (embedding {cfg.vocab_size}), "
          f"lowercase={ck.tokenizer['lowercase']}, max_positions={max_positions}, "
          f"max_length={max_length}")
    for note in ck.notes:
        print(f"  note:       {note}")
    if unused:
        print(f"  unused:     {len(unused)} checkpoint tensors ({', '.join(unused[:4])}"
              f"{', ...' if len(unused) > 4 else ''})")
    print(f"  {model_path.name}:   {model_path.stat().st_size / 1e6:.2f} MB "
          f"sha256={manifest['model_sha256'][:16]}...")
    print(f"  embedding:  {emb_name}")
    print(f"  trace check: {len(checks)} batches, max abs diff {worst:.2e} (tol {TRACE_TOL:g})")
    print(f"  took {time.time() - t0:.1f}s")
    return out
