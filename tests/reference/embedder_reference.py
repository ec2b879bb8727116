#!/usr/bin/env python3
"""What sentence-transformers computes on an embedder directory: the reference of
tests/e2e/embedder_parity_test.cc.

Usage:
  python tests/reference/embedder_reference.py --checkpoint DIR --out FILE.json [--max-length N]

DIR is a sentence-transformers directory (modules.json ...) or a bare transformers encoder.
SentenceTransformer(DIR) with max_seq_length N encodes the multilingual sample texts
(models/common/multilingual_corpus.py) with no prompt and with each of the directory's prompts
(prompt_name=...), special tokens written in a text read as text (as the engine reads them),
and ranks a few records' passages for their query with model.similarity,
the query under the "query" prompt and the passages under "passage" (or "document") when the
directory has them.

Output (UTF-8 JSON):
  {"checkpoint", "max_length", "similarity", "prompts": {name: text}, "texts": [...],
   "embeddings": {"none" | prompt name: [[...], ...]},
   "rerank": [{"query", "passages", "scores"}], "passage_prompt", "query_prompt"}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from models.common.multilingual_corpus import sample_texts  # noqa: E402

_RECORDS = [
    ("where is the train station", ["the station is near the river", "coffee and bread",
                                    "Bahnhof an der Straße", "le train part à midi"]),
    ("北京的天气", ["今天北京天气很好", "the weather in the morning", "音乐 图书馆"]),
    ("music library", ["a library of music", "música en la ciudad", "water mountain"]),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-length", type=int, default=128)
    args = parser.parse_args()

    import torch  # noqa: PLC0415
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415

    torch.set_num_threads(int(os.environ.get("ENGINE_TEST_THREADS", "2")))
    model = SentenceTransformer(str(args.checkpoint), device="cpu")
    model.max_seq_length = args.max_length
    # The engine reads special tokens written in a text ("[CLS]", "<s>") as text, never as
    # structure (docs/tokenizers.md); the fast tokenizer does the same with this set.
    model.tokenizer.split_special_tokens = True
    prompts = {name: text for name, text in model.prompts.items() if text}
    texts = sample_texts()
    embeddings = {"none": model.encode(texts, batch_size=8, prompt="").tolist()}
    for name in prompts:
        embeddings[name] = model.encode(texts, batch_size=8, prompt_name=name).tolist()

    query_prompt = "query" if "query" in prompts else None
    passage_prompt = next((n for n in ("passage", "document") if n in prompts), None)
    rerank = []
    for query, passages in _RECORDS:
        q = model.encode([query], prompt_name=query_prompt) if query_prompt else \
            model.encode([query], prompt="")
        p = model.encode(passages, prompt_name=passage_prompt) if passage_prompt else \
            model.encode(passages, prompt="")
        scores = model.similarity(q, p)[0].tolist()
        rerank.append({"query": query, "passages": passages, "scores": scores})

    result = {"checkpoint": str(args.checkpoint), "max_length": args.max_length,
              "similarity": model.similarity_fn_name, "prompts": prompts, "texts": texts,
              "embeddings": embeddings, "rerank": rerank, "query_prompt": query_prompt,
              "passage_prompt": passage_prompt}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as file:
        json.dump(result, file, ensure_ascii=False)
    print(f"{args.out}: {len(texts)} texts x {len(embeddings)} prompt settings, "
          f"{len(rerank)} rerank records")
    return 0


if __name__ == "__main__":
    sys.exit(main())
