#!/usr/bin/env python3
"""Reference ids and scores from FlagEmbedding's FlagLLMReranker (1.4.2) on CPU.

Usage:
  python tests/reference/llm_reranker_reference.py --checkpoint DIR --out FILE.json
      [--max-length 256] [--bundle BUNDLE_DIR]

Writes one JSON file with
  pairs   [{query, passage, input_ids, query_truncated, passage_truncated,
           passage_cut ("none", "max_length" or "budget")}]:
          input_ids are the unpadded rows FlagLLMReranker feeds its model,
          recorded at the model's forward (its own code path, not restated)
  scores  {batch_size_1, batch_size_4, normalized_batch_size_1}: from
          FlagLLMReranker(DIR, use_fp16=False, devices="cpu").compute_score
  texts   [{text, slow_ids, fast_ids, spm_ids, slow_ids_bos, fast_ids_bos}]:
          GemmaTokenizer (slow), GemmaTokenizerFast and raw sentencepiece
plus the prompt/separator ids and the 'Yes' id.  With --bundle, model.pt is
also run on the recorded ids (unpadded, and batched with right padding)
and compared with the batch_size=1 scores ("bundle_check").
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import random
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from models.common import multilingual_corpus as mc  # noqa: E402


def make_pairs(seed: int = 7) -> list[list[str]]:
    """~20 pairs: short, medium and long passages (long ones are cut at
    max_length 256), one query long enough to be cut at 3/4, edge cases."""
    rng = random.Random(seed)
    langs = ["en", "de", "fr", "es", "ru", "el", "ar", "he", "hi", "zh", "ja", "ko", "th"]
    pairs = []
    for i, lang in enumerate(langs + ["en", "zh", "de", "ja"]):
        sentences = [1, 3, 6, 60][i % 4]   # every 4th passage is far over 256 tokens
        pairs.append([mc.query(rng, lang), mc.passage(rng, lang, sentences)])
    pairs.append([mc.passage(rng, "en", 40), mc.passage(rng, "en", 4)])   # query cut at 3/4
    # Passages cut by the second rule (bos + q + sep + p <= max_length +
    # |prompt|) rather than by the max_length cap: the query is long.
    pairs.append([mc.passage(rng, "de", 40), mc.passage(rng, "de", 60)])
    pairs.append([mc.passage(rng, "fr", 4), mc.passage(rng, "fr", 60)])
    pairs.append(["Yes or No?", "Yes.\n\nNo!\tMaybe  twice   spaced 🙂 <b>bold</b>"])
    pairs.append(["", ""])
    pairs.append([mc.query(rng, "ru") + " search", mc.passage(rng, None, 8)])
    return pairs


def text_samples() -> list[str]:
    pick = mc.sample_texts()
    texts = [pick[i] for i in (0, 1, 3, 4, 8, 9, 10, 13, 14, 16, 18, 20, 21, 25, 26, 27, 28,
                               29, 30, 32, 33, 38, 50, 55, 56, 57, 58, 59)]
    from models.llm_reranker.tokenizer import DEFAULT_PROMPT
    return texts + [DEFAULT_PROMPT, "Yes", " Yes", "\n", "\n\n\n", "A: what is it", "B: ",
                    "<start_of_turn>user\nhi<end_of_turn>", "a" + " " * 17 + "b", "x\t\ty"]


def tokenizer_ids(checkpoint: Path) -> list[dict]:
    from transformers import GemmaTokenizer, GemmaTokenizerFast
    slow = GemmaTokenizer.from_pretrained(checkpoint)
    fast = GemmaTokenizerFast.from_pretrained(checkpoint)
    out = []
    for text in text_samples():
        out.append({
            "text": text,
            "slow_ids": slow(text, add_special_tokens=False)["input_ids"],
            "fast_ids": fast(text, add_special_tokens=False)["input_ids"],
            "spm_ids": slow.sp_model.encode(text),
            "slow_ids_bos": slow(text, add_special_tokens=True)["input_ids"],
            "fast_ids_bos": fast(text, add_special_tokens=True)["input_ids"],
        })
    return out


def flag_reference(checkpoint: Path, pairs: list[list[str]], max_length: int) -> dict:
    import torch
    from FlagEmbedding import FlagLLMReranker

    import FlagEmbedding.inference.reranker.decoder_only.base as flag_base
    # Its "pre tokenize" bar ignores TQDM_DISABLE (disable= is passed).
    flag_base.trange = lambda *args, **kwargs: range(*args)

    reranker = FlagLLMReranker(str(checkpoint), use_fp16=False, devices="cpu")
    seen = []
    original_forward = reranker.model.forward

    def recording_forward(*args, **kwargs):
        seen.append((kwargs["input_ids"].clone(), kwargs["attention_mask"].clone()))
        return original_forward(*args, **kwargs)

    reranker.model.forward = recording_forward
    score = lambda ps, bs, norm=False: [float(x) for x in reranker.compute_score(
        ps, batch_size=bs, max_length=max_length, normalize=norm)]

    # (a) one pair per call: the last forward is that pair's row (the first is
    # FlagLLMReranker's batch-size probe on the same row).
    rows, single, sides = [], [], set()
    for pair in pairs:
        seen.clear()
        single.append(score([pair], 1)[0])
        ids, mask = seen[-1]
        sides.add("left" if mask[0, 0] == 0 else "right" if mask[0, -1] == 0 else "none")
        rows.append(ids[0][mask[0].bool()].tolist())
    seen.clear()
    bs1 = score(pairs, 1)
    batched_rows = sorted(ids[0][mask[0].bool()].tolist() for ids, mask in seen[1:])
    if batched_rows != sorted(rows):
        raise RuntimeError("rows built for the whole list differ from the per-pair rows")
    if bs1 != single:
        raise RuntimeError("per-pair and whole-list batch_size=1 scores differ")
    bs4 = score(pairs, 4)

    tok = reranker.tokenizer
    qmax = max_length * 3 // 4
    ids_of = lambda t: tok(t, add_special_tokens=False)["input_ids"]
    fixed = 1 + 2 * len(ids_of("\n")) + len(reranker_prompt_ids(tok))  # bos, 2 seps, prompt
    info = []
    for (q, p), r in zip(pairs, rows):
        q_len, p_len = len(ids_of("A: " + q)), len(ids_of("B: " + p))
        kept = len(r) - fixed - min(q_len, qmax)
        cut = "none" if kept == p_len else "max_length" if kept == max_length else "budget"
        info.append({"query": q, "passage": p, "input_ids": r, "query_truncated": q_len > qmax,
                     "passage_truncated": kept < p_len, "passage_cut": cut})
    return {
        "flagembedding_version": importlib.metadata.version("FlagEmbedding"),
        "tokenizer_class": type(tok).__name__,
        "padding_side": tok.padding_side,
        "observed_padding": sorted(sides),
        "yes_token_id": reranker.yes_loc,
        "prompt_ids": reranker_prompt_ids(tok),
        "separator_ids": ids_of("\n"),
        "max_length": max_length,
        "query_max_length": qmax,
        "pairs": info,
        "scores": {"batch_size_1": bs1, "batch_size_4": bs4,
                   "normalized_batch_size_1": score(pairs, 1, True)},
        "batch_size_max_abs_diff": max(abs(a - b) for a, b in zip(bs1, bs4)),
        "torch_version": torch.__version__,
    }


def reranker_prompt_ids(tok) -> list[int]:
    from models.llm_reranker.tokenizer import DEFAULT_PROMPT
    return tok(DEFAULT_PROMPT, add_special_tokens=False)["input_ids"]


def bundle_check(bundle: Path, rows: list[list[int]], expected: list[float]) -> dict:
    import torch
    model = torch.jit.load(str(bundle / "model.pt")).eval()
    pad = json.loads((bundle / "engine.json").read_text())["special_tokens"]["pad"]

    def run(batch, side):
        width = max(len(r) for r in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(batch):
            sl = slice(0, len(r)) if side == "right" else slice(width - len(r), width)
            ids[i, sl] = torch.tensor(r)
            mask[i, sl] = 1
        with torch.no_grad():
            return model(ids, mask).tolist()

    result = {}
    # The graph reads right-padded rows, as the engine pads them (engine.json "padding").
    for name, size, side in (("unpadded", 1, "right"), ("right_padded_4", 4, "right")):
        got = [s for k in range(0, len(rows), size) for s in run(rows[k:k + size], side)]
        result[name] = max(abs(a - b) for a, b in zip(got, expected))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description="FlagLLMReranker reference ids and scores")
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--bundle", type=Path, default=None, help="also check BUNDLE/model.pt")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not (args.checkpoint / "config.json").is_file():
        parser.error(f"{args.checkpoint}: no config.json")
    if args.bundle is not None and not (args.bundle / "model.pt").is_file():
        parser.error(f"{args.bundle}: no model.pt")

    import torch
    torch.set_num_threads(max(1, args.threads))
    result = {"checkpoint": str(args.checkpoint.resolve())}
    result.update(flag_reference(args.checkpoint, make_pairs(), args.max_length))
    result["texts"] = tokenizer_ids(args.checkpoint)
    bad = [t["text"] for t in result["texts"]
           if not t["slow_ids"] == t["fast_ids"] == t["spm_ids"]]
    result["tokenizer_disagreements"] = bad
    if args.bundle is not None:
        rows = [p["input_ids"] for p in result["pairs"]]
        result["bundle_check"] = bundle_check(args.bundle, rows, result["scores"]["batch_size_1"])

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    s1 = result["scores"]["batch_size_1"]
    print(f"wrote {args.out}: {len(s1)} pairs, scores [{min(s1):.4f}, {max(s1):.4f}], "
          f"batch 1 vs 4 max diff {result['batch_size_max_abs_diff']:.2e}, "
          f"padding {result['observed_padding']}")
    print(f"  truncated: query {sum(p['query_truncated'] for p in result['pairs'])}, "
          f"passage {[p['passage_cut'] for p in result['pairs'] if p['passage_truncated']]}; "
          f"row lengths {min(len(p['input_ids']) for p in result['pairs'])}.."
          f"{max(len(p['input_ids']) for p in result['pairs'])}")
    print(f"  tokenizer: {len(result['texts'])} texts, {len(bad)} slow/fast/spm disagreements"
          + "".join(f"\n    {t!r}" for t in bad))
    if "bundle_check" in result:
        print("  bundle model.pt vs batch_size=1: " + ", ".join(
            f"{k} {v:.2e}" for k, v in result["bundle_check"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
