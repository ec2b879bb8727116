#!/usr/bin/env python3
"""Reference scores for BERT / StructBERT sentence-similarity checkpoints.

Usage:
  python tests/reference/structbert_reference.py --checkpoint DIR --pairs FILE.jsonl \
      --out FILE.json [--max-length 128]

DIR is a checkpoint in ModelScope's layout (configuration.json, config.json,
pytorch_model.bin, vocab.txt) or a HuggingFace BERT one; weights are read with
``models.structbert.checkpoint`` (ModelScope key names mapped to HF's) into
transformers' BertForSequenceClassification / BertModel.  FILE.jsonl holds
{"text_a", "text_b"} lines.

(a) cross-encoder, as ModelScope's sentence-similarity pipeline computes it:
    BertTokenizer.from_pretrained(DIR) (BertTokenizerFast only if
    tokenizer_config.json says use_fast), one pair at a time,
    ``tokenizer(a, b, truncation=True, padding="max_length",
    max_length=L, return_tensors="pt")``, logits of the 2-label classifier on
    the pooled output, softmax over the labels.  ModelScope reports
    probabilities[i][similar_index] with label name labels[similar_index].
    Note: the pipeline itself uses L=512 unless given sequence_length (or
    configuration.json's preprocessor sets max_length); 128 is the
    preprocessor's own default.
(b) bi-encoder: BertModel (no pooler) on each sentence alone
    (``tokenizer(text, truncation=True, max_length=L)``), mean of the last
    hidden states over the attention mask, cosine of the two means.

Output (UTF-8 JSON):
  {"checkpoint", "max_length", "labels", "similar_index", "tokenizer",
   "pairs": [{"text_a", "text_b", "input_ids", "token_type_ids", "ids_a", "ids_b"}],
   "logits": [[l0, l1], ...], "probabilities": [[p0, p1], ...],
   "cosine": [...], "embeddings_a": [[...]], "embeddings_b": [[...]]}
input_ids / token_type_ids are the pair rows without the padding; ids_a /
ids_b the single-sentence rows of (b).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from models.structbert.checkpoint import build_model, read_checkpoint  # noqa: E402


def _read_pairs(path: Path) -> list[tuple[str, str]]:
    pairs = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                rec = json.loads(line)
                if not isinstance(rec.get("text_a"), str) or not isinstance(rec.get("text_b"), str):
                    raise ValueError(f"{path}:{n}: expected string text_a and text_b")
                pairs.append((rec["text_a"], rec["text_b"]))
    return pairs


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)


@torch.no_grad()
def main() -> int:
    parser = argparse.ArgumentParser(description="StructBERT / BERT similarity reference")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--pairs", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()

    import transformers
    from transformers import BertTokenizer, BertTokenizerFast

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(2)
    t0 = time.time()
    ck = read_checkpoint(args.checkpoint)
    cross, _ = build_model(ck, "cross_encoder")
    bi, _ = build_model(ck, "bi_encoder")
    tok_cls = BertTokenizerFast if ck.tokenizer["use_fast"] else BertTokenizer
    tok = tok_cls.from_pretrained(str(ck.path))
    L = args.max_length
    pairs = _read_pairs(args.pairs)

    records, logits, probs, cosine, emb_a, emb_b = [], [], [], [], [], []
    for a, b in pairs:
        enc = tok(a, b, truncation=True, padding="max_length", max_length=L,
                  return_tensors="pt")
        out = cross(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                    token_type_ids=enc["token_type_ids"])[0]
        logits.append(out[0].tolist())
        probs.append(torch.softmax(out, dim=-1)[0].tolist())
        n = int(enc["attention_mask"][0].sum())
        single = tok([a, b], truncation=True, max_length=L, padding=True, return_tensors="pt")
        hidden = bi(input_ids=single["input_ids"], attention_mask=single["attention_mask"],
                    token_type_ids=single["token_type_ids"])[0]
        pooled = mean_pool(hidden, single["attention_mask"])
        cosine.append(torch.nn.functional.cosine_similarity(pooled[0:1], pooled[1:2]).item())
        emb_a.append(pooled[0].tolist())
        emb_b.append(pooled[1].tolist())
        rows = [single["input_ids"][i][single["attention_mask"][i].bool()].tolist()
                for i in range(2)]
        records.append({"text_a": a, "text_b": b,
                        "input_ids": enc["input_ids"][0, :n].tolist(),
                        "token_type_ids": enc["token_type_ids"][0, :n].tolist(),
                        "ids_a": rows[0], "ids_b": rows[1]})

    labels = ck.labels
    similar = labels.index("1") if "1" in labels else len(labels) - 1
    result = {
        "checkpoint": str(ck.path), "layout": ck.layout, "max_length": L,
        "labels": labels, "similar_index": similar,
        "tokenizer": {"class": tok_cls.__name__, **ck.tokenizer},
        "pairs": records, "logits": logits, "probabilities": probs,
        "cosine": cosine, "embeddings_a": emb_a, "embeddings_b": emb_b,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    truncated = sum(len(r["input_ids"]) == L for r in records)
    scores = [p[similar] for p in probs]
    print(f"wrote {args.out}: {len(records)} pairs at max_length {L} ({truncated} truncated), "
          f"P(label {labels[similar]!r}) in "
          f"[{min(scores):.4f}, {max(scores):.4f}], cosine in "
          f"[{min(cosine):.4f}, {max(cosine):.4f}] ({time.time() - t0:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
