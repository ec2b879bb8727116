#!/usr/bin/env python3
"""Reference outputs of FlagEmbedding's BGEM3FlagModel (1.4.2) on CPU.

Usage:
  python tests/reference/bge_m3_reference.py --checkpoint DIR --out FILE.json
      [--max-length 512] [--batch-size 8]

Writes one JSON object:
  texts, max_length (L = --max-length), input_ids, dense, lexical_weights, colbert
      ``BGEM3FlagModel.encode(texts, max_length=L, return_dense/sparse/colbert_vecs)``;
      input_ids as its tokenizer makes them (truncation=True, max_length=L, with
      <s> ... </s>); lexical_weights {"<token id>": weight}; colbert[i] has
      len(input_ids[i]) - 1 vectors (no <s>).
  max_length_128    the same keys again, encoded at max_length 128
  pairs, weights_for_different_modes, max_query_length, max_passage_length
  pair_input_ids    {"query": [[ids]], "passage": [[ids]]} tokenized at L
  compute_score     ``compute_score(pairs, weights_for_different_modes=[0.4, 0.2, 0.4],
                    max_query_length=L, max_passage_length=L, batch_size=1)``: the
                    lists under colbert, sparse, dense, sparse+dense,
                    colbert+sparse+dense.  batch_size=1 because compute_score's
                    ColBERT max runs over the batch-padded passage, whose zero
                    vectors clamp each query token's max at 0 (see below)
  compute_score_batched  the same in one batch of all pairs: for every passage
                    shorter than the batch's longest, colbert sums
                    max(max_j q_i . p_j, 0) instead of max_j q_i . p_j
  functions         per pair from encode_queries / encode_corpus at L:
                    dense (q . p), lexical (compute_lexical_matching_score),
                    colbert (colbert_score)
Floats are float32 values written in their shortest round-trip form.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from models.common.multilingual_corpus import passage, query, sample_texts  # noqa: E402

WEIGHTS = [0.4, 0.2, 0.4]
SHORT_LENGTH = 128


def f32(x):
    """Nested lists of float32 values, each the shortest decimal that reads
    back as the same float32."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 0:
        return float(np.format_float_positional(a[()], unique=True, trim="-"))
    return [f32(v) for v in a]


def _lengthen(tokenizer, rng: random.Random, text: str, min_tokens: int) -> str:
    """Append sentences until ``text`` tokenizes (untruncated) to > min_tokens."""
    while len(tokenizer(text)["input_ids"]) <= min_tokens:
        text = f"{text} {passage(rng, sentences=3)}".strip()
    return text


def make_texts(tokenizer, max_length: int) -> list[str]:
    samples = sample_texts()
    picks = [
        "The quick answer is in the small library near the river.",
        "我们今天在北京学习中文，天气很好。",
        "Price: €19.99 (was $25); 50% off!!! #deal @shop ~ok~",
        "Great job 👍🎉🔥 let's go 🚀",
        "full-width ＡＢＣ ａｂｃ １２３ ！？",
        "cafe\u0301 re\u0301sume\u0301 nai\u0308ve",
        "rare CJK 龘 𠀀 𪚥 and 鱻",            # <unk>: dropped from lexical weights
        "   \t  mixed \n\t whitespace  \t ",
        "",                                    # <s></s> only: one colbert vector
        "a",
    ]
    assert all(t in samples for t in picks)
    rng = random.Random(20240501)
    texts = picks + [
        # repeated words: the same token id at several positions (max merge)
        "search engine search engine ranking model ranking model search",
        "Берлин Berlin берлин BERLIN Berlin, Berlin!",
    ]
    texts += [passage(rng, lang, sentences=rng.randint(2, 5))
              for lang in ("en", "de", "ru", "ja", "ar", "hi")]
    # between 128 and L tokens (truncated only by the 128 run), then > L
    texts.append(_lengthen(tokenizer, rng, passage(rng, "fr", 2), SHORT_LENGTH + 20))
    texts.append(_lengthen(tokenizer, rng, passage(rng, None, 2),
                           max(max_length, SHORT_LENGTH) + 20))
    return texts


def make_pairs(texts: list[str]) -> list[list[str]]:
    rng = random.Random(99)
    pairs = []
    for lang in ("en", "de", "zh", "ru", "es", "ja"):
        q = query(rng, lang)
        # the passage repeats query words among others, so sparse scores are > 0
        p = f"{passage(rng, lang, 2)} {q} {passage(rng, lang, 1)}"
        pairs.append([q, p])
    pairs.append([query(rng, "en"), passage(rng, "ko", 3)])   # cross-lingual
    pairs.append(["search engine ranking", texts[-1]])         # passage truncated at L
    pairs.append([texts[-2], "a"])                             # long query, 1-word passage
    pairs.append(["", "Berlin Berlin river"])                  # empty query
    return pairs


def _encoded(flag, texts, max_length, batch_size) -> dict:
    out = flag.encode(texts, batch_size=batch_size, max_length=max_length, return_dense=True,
                      return_sparse=True, return_colbert_vecs=True)
    ids = flag.tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    for i, row in enumerate(ids):
        if out["colbert_vecs"][i].shape[0] != len(row) - 1:
            raise RuntimeError(f"text {i}: {len(row)} ids but "
                               f"{out['colbert_vecs'][i].shape[0]} colbert vectors")
    return {
        "max_length": max_length,
        "input_ids": [list(map(int, r)) for r in ids],
        "dense": f32(out["dense_vecs"]),
        "lexical_weights": [{k: f32(v) for k, v in lw.items()} for lw in out["lexical_weights"]],
        "colbert": [f32(c) for c in out["colbert_vecs"]],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="BGEM3FlagModel reference outputs")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    for name in ("config.json", "sparse_linear.pt", "colbert_linear.pt"):
        # Without the heads BGEM3FlagModel silently uses random ones.
        if not (args.checkpoint / name).is_file():
            parser.error(f"{args.checkpoint}: no {name}")
    if args.max_length < 8:
        parser.error("--max-length must be >= 8")

    import torch
    from FlagEmbedding import BGEM3FlagModel

    torch.set_num_threads(2)
    flag = BGEM3FlagModel(str(args.checkpoint), use_fp16=False, devices="cpu",
                          batch_size=args.batch_size)
    L = args.max_length
    texts = make_texts(flag.tokenizer, L)
    result = {"checkpoint": str(args.checkpoint.resolve()), "texts": texts}
    result.update(_encoded(flag, texts, L, args.batch_size))
    result[f"max_length_{SHORT_LENGTH}"] = _encoded(flag, texts, SHORT_LENGTH, args.batch_size)

    pairs = make_pairs(texts)
    scores, batched = (flag.compute_score(pairs, batch_size=b, max_query_length=L,
                                          max_passage_length=L,
                                          weights_for_different_modes=WEIGHTS)
                       for b in (1, len(pairs)))
    qs = flag.encode_queries([q for q, _ in pairs], batch_size=args.batch_size, max_length=L,
                             return_dense=True, return_sparse=True, return_colbert_vecs=True)
    ps = flag.encode_corpus([p for _, p in pairs], batch_size=args.batch_size, max_length=L,
                            return_dense=True, return_sparse=True, return_colbert_vecs=True)
    functions = {"dense": [], "lexical": [], "colbert": []}
    for i in range(len(pairs)):
        functions["dense"].append(f32(np.dot(qs["dense_vecs"][i], ps["dense_vecs"][i])))
        functions["lexical"].append(f32(flag.compute_lexical_matching_score(
            qs["lexical_weights"][i], ps["lexical_weights"][i])))
        functions["colbert"].append(f32(flag.colbert_score(
            qs["colbert_vecs"][i], ps["colbert_vecs"][i]).item()))
    result.update({
        "pairs": pairs,
        "weights_for_different_modes": WEIGHTS,
        "max_query_length": L,
        "max_passage_length": L,
        "pair_input_ids": {
            side: [list(map(int, r)) for r in flag.tokenizer(
                [p[k] for p in pairs], truncation=True, max_length=L)["input_ids"]]
            for k, side in ((0, "query"), (1, "passage"))},
        "compute_score": {k: f32(v) for k, v in scores.items()},
        "compute_score_batched": {k: f32(v) for k, v in batched.items()},
        "functions": functions,
    })

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False) + "\n", encoding="utf-8")
    lens = [len(r) for r in result["input_ids"]]
    gap = {k: max(abs(a - b) for a, b in zip(scores[s], functions[k]))
           for k, s in (("dense", "dense"), ("lexical", "sparse"), ("colbert", "colbert"))}
    clamp = max(abs(a - b) for a, b in zip(batched["colbert"], functions["colbert"]))
    print(f"wrote {args.out}: {len(texts)} texts ({min(lens)}..{max(lens)} ids at {L}), "
          f"{len(pairs)} pairs")
    print("  compute_score vs per-pair functions, max abs diff: "
          + ", ".join(f"{k} {v:.2e}" for k, v in gap.items())
          + f"; batched colbert {clamp:.2e} (padding clamp)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
