#!/usr/bin/env python3
"""Reference token ids for the C++ XLM-R tokenizer.

Usage:
  python tests/reference/xlmr_tokenizer_reference.py --checkpoint DIR --out FILE.json [--max-length 512]

Output (UTF-8 JSON, ensure_ascii=False):
  {"singles": [{"text", "slow_ids", "fast_ids", "slow_pieces"}, ...],
   "pairs":   [{"query", "passage", "max_length", "pair_ids", "slow_pair_ids"}, ...]}

singles: ``tokenizer(text)["input_ids"]`` from XLMRobertaTokenizer (slow,
SentencePiece) and XLMRobertaTokenizerFast (tokenizer.json), both loaded from
DIR.  They can disagree; the entries are written as they come.

pairs: the exact ``input_ids`` row that FlagEmbedding 1.4.2's FlagReranker
feeds its model.  Rather than re-stating its pre-tokenization (query without
specials truncated to max_length*3//4, passage truncated to max_length, then
``prepare_for_model_compat(..., truncation='only_second')``), FlagReranker's
own ``compute_score`` is run with its model swapped for a recorder that keeps
the ids it receives.  ``pair_ids`` uses FlagReranker's own tokenizer
(AutoTokenizer, i.e. the fast one); ``slow_pair_ids`` repeats it with the slow
tokenizer swapped in.  Pairs are built for --max-length and for 64.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from types import SimpleNamespace

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from models.common.multilingual_corpus import corpus_lines, sample_texts  # noqa: E402


class RecordingModel(nn.Module):
    """Stands in for the classifier: records input rows, returns zero logits."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, input_ids, attention_mask=None, return_dict=True, **kwargs):
        self.calls.append({"input_ids": input_ids.tolist(),
                           "attention_mask": None if attention_mask is None
                           else attention_mask.tolist(),
                           "extra_inputs": sorted(kwargs)})
        return SimpleNamespace(logits=torch.zeros(input_ids.shape[0], 1))


def flag_pair_ids(reranker, recorder: RecordingModel, query: str, passage: str,
                   max_length: int) -> list[int]:
    recorder.calls.clear()
    # batch_size=2 with one pair: no padding, and FlagEmbedding's progress
    # bars stay disabled (they show when len(pairs) >= batch_size).
    reranker.compute_score([(query, passage)], batch_size=2, max_length=max_length,
                           normalize=False)
    last = recorder.calls[-1]
    assert len(last["input_ids"]) == 1, "expected a single-row batch"
    assert last["extra_inputs"] == [], f"unexpected model inputs {last['extra_inputs']}"
    assert last["attention_mask"] is None or all(last["attention_mask"][0])
    return last["input_ids"][0]


def _long_text(rng: random.Random, words: int) -> str:
    """About ``words`` whitespace-separated words of mixed-language corpus text."""
    lines = corpus_lines(seed=rng.randrange(1 << 30), n=words // 4)
    out = []
    for line in lines:
        out.extend(line.split())
        if len(out) >= words:
            break
    return " ".join(out[:words])


def build_pairs() -> list[tuple[str, str]]:
    texts = sample_texts()
    pairs = [(texts[i], texts[i + 1]) for i in range(len(texts) - 1)]
    rng = random.Random(7)
    long_p = _long_text(rng, 2000)
    long_q = _long_text(rng, 2000)
    cjk_run = "我们今天在北京学习中文天气很好" * 150  # ~2000 chars, no spaces
    pairs += [
        ("what is the weather in Berlin", long_p),  # long passage, short query
        (long_q, "short passage about the river."),  # long query, short passage
        (long_q, long_p),                            # both long
        (cjk_run, long_p),                           # long query without spaces
        ("搜索引擎 排序", cjk_run),
        ("", long_p),                                # empty query
        (long_q, ""),                                # empty passage
    ]
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(description="XLM-R tokenizer reference ids")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-length", type=int, default=512)
    args = parser.parse_args()
    if not (args.checkpoint / "sentencepiece.bpe.model").is_file():
        parser.error(f"{args.checkpoint}: no sentencepiece.bpe.model")

    import transformers
    from transformers import XLMRobertaTokenizer, XLMRobertaTokenizerFast
    from FlagEmbedding import FlagReranker

    transformers.logging.set_verbosity_error()  # "sequence longer than max" noise
    torch.set_num_threads(2)
    slow = XLMRobertaTokenizer.from_pretrained(args.checkpoint)
    fast = XLMRobertaTokenizerFast.from_pretrained(args.checkpoint)

    singles = []
    for text in sample_texts():
        slow_ids = slow(text)["input_ids"]
        singles.append({"text": text, "slow_ids": slow_ids, "fast_ids": fast(text)["input_ids"],
                        "slow_pieces": slow.convert_ids_to_tokens(slow_ids)})

    reranker = FlagReranker(str(args.checkpoint), use_fp16=False, devices="cpu")
    flag_tokenizer = reranker.tokenizer
    recorder = RecordingModel()
    reranker.model = recorder

    pairs = []
    for max_length in sorted({args.max_length, 64}):
        for query, passage in build_pairs():
            reranker.tokenizer = flag_tokenizer
            pair_ids = flag_pair_ids(reranker, recorder, query, passage, max_length)
            reranker.tokenizer = slow
            slow_pair_ids = flag_pair_ids(reranker, recorder, query, passage, max_length)
            pairs.append({"query": query, "passage": passage, "max_length": max_length,
                          "pair_ids": pair_ids, "slow_pair_ids": slow_pair_ids})
    reranker.tokenizer = flag_tokenizer

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"singles": singles, "pairs": pairs}, ensure_ascii=False),
                        encoding="utf-8")

    n_single = sum(s["slow_ids"] == s["fast_ids"] for s in singles)
    n_pair = sum(p["pair_ids"] == p["slow_pair_ids"] for p in pairs)
    print(f"wrote {args.out}: {len(singles)} singles (slow==fast: {n_single}), "
          f"{len(pairs)} pairs (FlagReranker fast==slow: {n_pair}); "
          f"FlagReranker tokenizer: {type(flag_tokenizer).__name__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
