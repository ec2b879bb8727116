#!/usr/bin/env python3
"""What the published LLM rerankers' own code computes on a checkpoint: the reference of
tests/e2e/decoder_reranker_parity_test.cc.

Usage:
  python tests/reference/decoder_reranker_reference.py --reranker qwen3-reranker|mxbai-rerank-v2|
      bge-reranker-v2-minicpm-layerwise --checkpoint DIR --out FILE.json [--max-length N]
      [--instruction TEXT] [--cutoff-layer N]

qwen3-reranker runs the Qwen3-Reranker model card's code as written there (transformers
AutoModelForCausalLM, the tokenizer padding on the left, format_instruction, prefix and suffix
tokens, truncation of the formatted text to max_length minus both, the log-softmax over the 'no'
and 'yes' logits at the last position), in batches of 4. mxbai-rerank-v2 runs mxbai-rerank's
MxbaiRerankV2.predict (PyPI package, 0.1.6) in float32 on the CPU.
bge-reranker-v2-minicpm-layerwise runs FlagEmbedding's LayerWiseFlagLLMReranker.compute_score
(1.4.2, float32 on the CPU) with cutoff_layers=[--cutoff-layer] and --instruction as its prompt.
Each records the unpadded input ids each pair got (from the model's forward, their own code path)
and its score; each reference scores the pairs without an instruction (or with its default one)
and under --instruction.

Output (UTF-8 JSON):
  {"reranker", "checkpoint", "max_length", "instruction",
   "runs": {"default" | "instruction": [{"query", "passage", "input_ids", "score"}]},
   "rerank": [{"query", "passages", "scores"}],   (20 queries x 4 passages, default instruction)
   "normalized": [score of each default pair with normalize]}
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from models.common import multilingual_corpus as mc  # noqa: E402


def make_pairs(seed: int = 11) -> list[tuple[str, str]]:
    """Short, medium and long passages in several scripts (long ones cut at max_length), a query
    long enough to crowd out its passage, and edge cases."""
    rng = random.Random(seed)
    pairs = []
    for i, lang in enumerate(["en", "de", "zh", "ja", "ru", "ar", "hi", "fr", "ko", "en"]):
        pairs.append((mc.query(rng, lang), mc.passage(rng, lang, [1, 3, 8, 60][i % 4])))
    pairs.append((mc.passage(rng, "en", 50), mc.passage(rng, "en", 6)))
    pairs.append(("yes or no?", "Yes.\n\nNo!\tMaybe  twice   spaced 🙂 <b>bold</b>"))
    pairs.append(("", ""))
    pairs.append(("1 or 0", "12345 67890, 3.14159"))
    return pairs


def make_rerank_records(seed: int = 12) -> list[tuple[str, list[str]]]:
    """20 queries with 4 passages each (one to three sentences), for rankings."""
    rng = random.Random(seed)
    langs = ["en", "de", "zh", "ja", "ru", "fr", "es", "ko", "ar", "hi"]
    return [(mc.query(rng, langs[i % len(langs)]),
             [mc.passage(rng, langs[(i + k) % len(langs)], 1 + k % 3) for k in range(4)])
            for i in range(20)]


def _recording(model, seen):
    original = model.forward

    def forward(*args, **kwargs):
        seen.append((kwargs["input_ids"].clone(), kwargs["attention_mask"].clone()))
        return original(*args, **kwargs)

    model.forward = forward


def qwen3_reranker(checkpoint: Path, pairs, max_length: int, instruction: str | None):
    """The model card's code (Qwen/Qwen3-Reranker-0.6B, 'Transformers Usage')."""
    import torch  # noqa: PLC0415
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: PLC0415

    tokenizer = AutoTokenizer.from_pretrained(checkpoint, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(checkpoint).eval()
    token_false_id = tokenizer.convert_tokens_to_ids("no")
    token_true_id = tokenizer.convert_tokens_to_ids("yes")
    prefix = ("<|im_start|>system\nJudge whether the Document meets the requirements based on the "
              "Query and the Instruct provided. Note that the answer can only be \"yes\" or "
              "\"no\".<|im_end|>\n<|im_start|>user\n")
    suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    prefix_tokens = tokenizer.encode(prefix, add_special_tokens=False)
    suffix_tokens = tokenizer.encode(suffix, add_special_tokens=False)

    def format_instruction(instruction, query, doc):
        if instruction is None:
            instruction = ("Given a web search query, retrieve relevant passages that answer the "
                           "query")
        return "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}".format(
            instruction=instruction, query=query, doc=doc)

    def process_inputs(texts):
        inputs = tokenizer(texts, padding=False, truncation="longest_first",
                           return_attention_mask=False,
                           max_length=max_length - len(prefix_tokens) - len(suffix_tokens))
        for i, ele in enumerate(inputs["input_ids"]):
            inputs["input_ids"][i] = prefix_tokens + ele + suffix_tokens
        inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)
        return inputs

    @torch.no_grad()
    def compute_logits(inputs):
        batch_scores = model(**inputs).logits[:, -1, :]
        true_vector = batch_scores[:, token_true_id]
        false_vector = batch_scores[:, token_false_id]
        batch_scores = torch.stack([false_vector, true_vector], dim=1)
        batch_scores = torch.nn.functional.log_softmax(batch_scores, dim=1)
        return batch_scores[:, 1].exp().tolist()

    seen = []
    _recording(model, seen)
    scores = []
    for start in range(0, len(pairs), 4):
        chunk = pairs[start:start + 4]
        texts = [format_instruction(instruction, q, d) for q, d in chunk]
        scores += compute_logits(process_inputs(texts))
    return scores, seen


def mxbai_rerank_v2(checkpoint: Path, pairs, max_length: int, instruction: str | None,
                    normalize: bool = False):
    import torch  # noqa: PLC0415
    from mxbai_rerank import MxbaiRerankV2  # noqa: PLC0415

    reranker = MxbaiRerankV2(str(checkpoint), device="cpu", torch_dtype=torch.float32,
                             max_length=max_length)
    seen = []
    _recording(reranker.model, seen)
    scores = []
    for start in range(0, len(pairs), 4):
        chunk = pairs[start:start + 4]
        scores += reranker.predict([q for q, _ in chunk], [d for _, d in chunk],
                                   instruction=instruction, normalize=normalize).tolist()
    return scores, seen


def layerwise_minicpm(checkpoint: Path, pairs, max_length: int, instruction: str | None,
                      normalize: bool = False, cutoff_layer: int | None = None):
    """FlagEmbedding's LayerWiseFlagLLMReranker, one pair per call (its forward sees the pairs in
    its own length order, after a batch-size probe; one pair at a time keeps the rows in pair
    order), then the rows' scores in batches of 4 must be the same."""
    from FlagEmbedding import LayerWiseFlagLLMReranker  # noqa: PLC0415

    import FlagEmbedding.inference.reranker.decoder_only.layerwise as layerwise  # noqa: PLC0415
    layerwise.trange = lambda *args, **kwargs: range(*args)  # its bar ignores TQDM_DISABLE
    reranker = LayerWiseFlagLLMReranker(str(checkpoint), use_fp16=False, devices="cpu",
                                        cutoff_layers=[cutoff_layer])
    # FlagEmbedding 1.4.2's MiniCPM code predates this transformers' cache classes (it calls
    # DynamicCache.get_usable_length when use_cache is on); one forward reads no cache.
    reranker.model.config.use_cache = False
    seen = []
    _recording(reranker.model, seen)

    def score(chunk, batch_size):
        got = reranker.compute_score(chunk, batch_size=batch_size, max_length=max_length,
                                     prompt=instruction, normalize=normalize)
        return [float(x) for x in (got if isinstance(got, list) else [got])]

    scores, rows = [], []
    for pair in pairs:
        seen.clear()
        scores += score([list(pair)], 1)
        rows.append(seen[-1])
    batched = score([list(pair) for pair in pairs], 4)
    worst = max(abs(a - b) for a, b in zip(scores, batched))
    if worst > 1e-5:
        raise RuntimeError(f"LayerWiseFlagLLMReranker: batches of 4 differ from one pair at a "
                           f"time by {worst:.3g}")
    return scores, rows


def unpadded_rows(seen) -> list[list[int]]:
    rows = []
    for ids, mask in seen:
        rows += [row[keep.bool()].tolist() for row, keep in zip(ids, mask)]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reranker", choices=["qwen3-reranker", "mxbai-rerank-v2",
                                               "bge-reranker-v2-minicpm-layerwise"], required=True)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--instruction", default="Find the passage that answers the question")
    parser.add_argument("--cutoff-layer", type=int, default=None,
                        help="bge-reranker-v2-minicpm-layerwise: the layer whose head scores")
    args = parser.parse_args()
    if (args.cutoff_layer is None) != (args.reranker != "bge-reranker-v2-minicpm-layerwise"):
        parser.error("--cutoff-layer is needed by, and only by, the layerwise reranker")

    import torch  # noqa: PLC0415

    torch.set_num_threads(int(os.environ.get("ENGINE_TEST_THREADS", "2")))
    run = {"qwen3-reranker": qwen3_reranker, "mxbai-rerank-v2": mxbai_rerank_v2,
           "bge-reranker-v2-minicpm-layerwise":
           lambda *a, **k: layerwise_minicpm(*a, **k, cutoff_layer=args.cutoff_layer)
           }[args.reranker]
    pairs = make_pairs()
    runs = {}
    for name, instruction in (("default", None), ("instruction", args.instruction)):
        scores, seen = run(args.checkpoint, pairs, args.max_length, instruction)
        rows = unpadded_rows(seen)
        if len(rows) != len(pairs) or len(scores) != len(pairs):
            raise RuntimeError(f"{len(rows)} rows and {len(scores)} scores for {len(pairs)} pairs")
        runs[name] = [{"query": q, "passage": d, "input_ids": r, "score": float(s)}
                      for (q, d), r, s in zip(pairs, rows, scores)]
    # task.normalize: mxbai-rerank's sigmoid around its estimated_max, FlagEmbedding's sigmoid;
    # Qwen3-Reranker's scores are probabilities already.
    normalized = ([item["score"] for item in runs["default"]]
                  if args.reranker == "qwen3-reranker" else
                  run(args.checkpoint, pairs, args.max_length, None, True)[0])
    rerank = []
    records = make_rerank_records()
    flat = [(q, d) for q, passages in records for d in passages]
    scores, _ = run(args.checkpoint, flat, args.max_length, None)
    for k, (query, passages) in enumerate(records):
        rerank.append({"query": query, "passages": passages,
                       "scores": [float(x) for x in scores[4 * k:4 * k + 4]]})
    longest = max(len(item["input_ids"]) for item in runs["default"])
    result = {"reranker": args.reranker, "checkpoint": str(args.checkpoint),
              "max_length": args.max_length, "instruction": args.instruction, "runs": runs,
              "rerank": rerank, "normalized": [float(x) for x in normalized]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as file:
        json.dump(result, file, ensure_ascii=False)
    print(f"{args.out}: {args.reranker}, {len(pairs)} pairs x {len(runs)} instruction settings, "
          f"longest row {longest} tokens")
    return 0


if __name__ == "__main__":
    sys.exit(main())
