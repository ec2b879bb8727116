#!/usr/bin/env python3
"""Reference token ids for the C++ BERT WordPiece tokenizer.

Usage:
  python tests/reference/wordpiece_reference.py --vocab VOCAB.txt --out FILE.json

Output (UTF-8 JSON, ensure_ascii=False):
  {"vocab_size": N,
   "singles": [{"text", "lowercase", "slow_ids", "fast_ids", "slow_tokens"}, ...],
   "pairs":   [{"text_a", "text_b", "max_length", "lowercase", "slow_ids",
                "slow_type_ids", "fast_ids", "fast_type_ids"}, ...],
   "disagreements": {"singles": [...], "pairs": [...]}}

Both ``BertTokenizer`` (slow, Python) and ``BertTokenizerFast`` (Rust
tokenizers, converted from the same vocab.txt) are run with
``do_lower_case=True`` and ``False`` (``strip_accents`` left unset, i.e. it
follows lowercase; ``tokenize_chinese_chars=True``).  singles are
``tokenizer(text)["input_ids"]`` (with [CLS]/[SEP]); pairs are
``tokenizer(text_a, text_b, truncation="longest_first", max_length=L)`` for
L in (512, 24).  Entries are written as they come; ``disagreements`` lists
where slow and fast differ.

None of the texts contains a literal special token ([CLS], [SEP], [PAD],
[UNK], [MASK]): HF splits those out of raw text, which the engine does not do.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

LENGTHS = (512, 24)


def sample_texts() -> list[str]:
    long_word = "abcdefghij" * 11            # 110 chars -> [UNK]
    word_100 = ("abcdefghij" * 10)[:100]     # exactly at the 100-char limit
    return [
        # Chinese
        "今天天气很好，我们去公园散步吧。",
        "这件衣服挺好看的",
        "我的快递为什么还没有到？",
        "北京是中国的首都。上海是最大的城市。",
        "我爱北京天安门！！！",
        "   前后有空格   ",
        # Chinese with Latin letters and digits
        "iPhone 15 Pro的价格是7999元",
        "COVID-19疫情在2020年爆发",
        "我用GPT-4写了100行Python代码",
        "订单号：A20240501-0099，请尽快发货",
        "5G网络速度比4G快10倍",
        "Apple iPhone和Google Android",
        # accents: lower-casing strips them, cased keeps them
        "Café résumé naïve",
        "ÀÉÎÕÜ Ünïcödé",
        "Straße über Mädchen",
        "garçon déjà élève château",
        "Crème Brûlée à la carte",
        "cafe\u0301 re\u0301sume\u0301",
        "Ångström İstanbul ΣΊΣΥΦΟΣ",
        "\u0301abc leading combining mark",
        "combining only \u0301\u0301 marks",
        "é" * 60 + " and " + "e\u0301" * 60,
        # emoji
        "好的👍谢谢😀",
        "emoji sequences 👩‍💻 🇨🇳 👍🏽 ❤️",
        # control and format characters
        "null\x00char",
        "bell\x07char",
        "zero\u200bwidth\u200bspace",
        "\ufeffBOM at start",
        "soft\u00adhyphen",
        "delete\x7fchar and \x1b escape",
        "private use \ue000 char",
        # whitespace
        "tab\tseparated\tvalues",
        "line one\nline two\r\nline three",
        "no\u00a0break\u00a0space and ideographic\u3000space",
        "   \t  mixed \n\t whitespace  \t ",
        # word length
        long_word,
        word_100,
        "x " + "1234567890" * 11,
        "supercalifragilisticexpialidocious",
        "searching engines ranked models",
        # mixed scripts
        "Tokyo東京Seoul서울Moscowмосква",
        "BERT模型для поиска und Suche",
        "abcабвαβγ一二三あいうアイウ가나다",
        "Arabic مرحبا Hebrew שלום",
        "Thai ภาษาไทย Hindi हिन्दी",
        # full-width and compatibility forms
        "full-width ＡＢＣ ａｂｃ １２３ ！？",
        "（中文括号）【标题】《书名》",
        "ｶﾀｶﾅ half-width",
        "ﬁnance ﬂow ligature",
        "Ⅻ ① ㈱ ㍻ ™ ℃ x² H₂O ½",
        "rare CJK 龘 𠀀 𪚥 and 鱻",
        # Japanese and Korean
        "こんにちは、東京の図書館でコーヒーを飲みました。",
        "カタカナとひらがな",
        "안녕하세요 서울의 날씨는 오늘 좋습니다",
        "한국어 학교 선생님",
        # punctuation
        "...,,,;;;:::!!!???---___***",
        "“引号”‘单引号’——破折号……省略号",
        "$100.00 (50% off!) #deal @shop ~ok~",
        "a.b,c;d:e!f?g",
        "https://www.example.com/search?q=中文&lang=zh",
        "[cls] and [ unk ] and <S> <T>",
        "math ∮ ∇ ⊕ ≠ ≤ ≥ ∞",
        # English
        "The quick answer is in the small library near the river.",
        "UPPER lower MiXeD Case",
        # empty and whitespace only
        "",
        " ",
        "\t\n",
        "\u3000",
    ]


def build_pairs(texts: list[str]) -> list[tuple[str, str]]:
    zh_long = "北京是中国的首都，也是政治文化中心。上海是最大的城市，经济非常发达。"
    zh_long2 = "我的快递为什么还没有到？订单号A20240501已经付款三天了，请客服尽快处理。"
    en_long = "The quick answer is in the small library near the river and the market."
    pairs = [(texts[i], texts[i + 1]) for i in range(0, len(texts) - 1, 2)]
    pairs += [
        (zh_long, "上海"),            # long first, short second
        ("上海", zh_long),            # short first, long second
        (zh_long, zh_long2),          # both long
        (zh_long, zh_long),           # equal lengths
        (zh_long[:-1], zh_long),      # off by one
        (en_long, zh_long2),          # English words vs CJK characters
        ("", zh_long),                # empty first
        (zh_long, ""),                # empty second
        ("今天天气很好", "今天天气不错"),  # short, nothing truncated
        ("这件衣服挺好看", "这件衣服好看"),
    ]
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(description="BERT WordPiece tokenizer reference ids")
    parser.add_argument("--vocab", type=Path, required=True, help="vocab.txt")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if not args.vocab.is_file():
        parser.error(f"--vocab {args.vocab}: not a file")

    import transformers
    from transformers import BertTokenizer, BertTokenizerFast

    transformers.logging.set_verbosity_error()
    texts = sample_texts()
    singles, pairs = [], []
    bad_singles, bad_pairs = [], []
    for lowercase in (True, False):
        slow = BertTokenizer(str(args.vocab), do_lower_case=lowercase)
        fast = BertTokenizerFast(vocab_file=str(args.vocab), do_lower_case=lowercase)
        for text in texts:
            slow_ids = slow(text)["input_ids"]
            fast_ids = fast(text)["input_ids"]
            singles.append({"text": text, "lowercase": lowercase, "slow_ids": slow_ids,
                            "fast_ids": fast_ids,
                            "slow_tokens": slow.convert_ids_to_tokens(slow_ids)})
            if slow_ids != fast_ids:
                bad_singles.append({"text": text, "lowercase": lowercase,
                                    "slow_tokens": slow.convert_ids_to_tokens(slow_ids),
                                    "fast_tokens": fast.convert_ids_to_tokens(fast_ids)})
        for max_length in LENGTHS:
            for a, b in build_pairs(texts):
                kw = dict(truncation="longest_first", max_length=max_length)
                s, f = slow(a, b, **kw), fast(a, b, **kw)
                pairs.append({"text_a": a, "text_b": b, "max_length": max_length,
                              "lowercase": lowercase,
                              "slow_ids": s["input_ids"], "slow_type_ids": s["token_type_ids"],
                              "fast_ids": f["input_ids"], "fast_type_ids": f["token_type_ids"]})
                if (s["input_ids"], s["token_type_ids"]) != (f["input_ids"], f["token_type_ids"]):
                    bad_pairs.append({"text_a": a, "text_b": b, "max_length": max_length,
                                      "lowercase": lowercase,
                                      "slow_tokens": slow.convert_ids_to_tokens(s["input_ids"]),
                                      "fast_tokens": fast.convert_ids_to_tokens(f["input_ids"])})

    vocab_size = sum(1 for _ in open(args.vocab, encoding="utf-8"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"vocab_size": vocab_size, "singles": singles, "pairs": pairs,
                                    "disagreements": {"singles": bad_singles,
                                                      "pairs": bad_pairs}},
                                   ensure_ascii=False), encoding="utf-8")
    truncated = sum(1 for p in pairs if p["max_length"] == 24 and len(p["slow_ids"]) == 24)
    print(f"wrote {args.out}: {len(singles)} singles ({len(texts)} texts x 2 casings), "
          f"{len(pairs)} pairs ({truncated} truncated at 24); slow/fast disagreements: "
          f"{len(bad_singles)} singles, {len(bad_pairs)} pairs")
    for d in bad_singles:
        print(f"  single lowercase={d['lowercase']} {d['text']!r}\n"
              f"    slow {d['slow_tokens']}\n    fast {d['fast_tokens']}")
    for d in bad_pairs:
        print(f"  pair lowercase={d['lowercase']} L={d['max_length']} "
              f"{d['text_a']!r} / {d['text_b']!r}\n"
              f"    slow {d['slow_tokens']}\n    fast {d['fast_tokens']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
