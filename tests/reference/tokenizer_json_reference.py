#!/usr/bin/env python3
"""Reference ids of Hugging Face tokenizers for the C++ tokenizer.json reader.

Usage:
  python tests/reference/tokenizer_json_reference.py --out DIR
  python tests/reference/tokenizer_json_reference.py --write-unicode-tables FILE.cc

--out trains tokenizers on the spot with tokenizers' own trainers (WordPiece, BPE, Unigram,
WordLevel; small vocabularies from models/common/multilingual_corpus.py) in the configurations
that published checkpoints use, converts sentencepiece models and a vocab.txt trained here with
transformers' converters, and writes to DIR:

  <name>.json      each tokenizer.json (19 of them)
  reference.json   {"texts": [{"text"} or {"base64"} for bytes that are not UTF-8],
                    "pairs": [[i, j], ...] (indices into texts),
                    "tokenizers": [{"name", "file", "options" (the engine's), "vocab_size"
                                    (largest id + 1), "special_ids" {pad, unk, bos, eos, mask},
                                    "special_token_count" [single, pair],
                                    "singles": [{"ids", "pieces", "special_ids", "type_ids"}],
                                    "pairs": [{"ids", "type_ids"}]}]}
  unicode.json     tokenizers' character classes, regex classes and per-character normal
                   forms and lower case, code point by code point

Every id comes from tokenizers 0.22 loading the file written, with encode_special_tokens = True
(the engine's policy: special tokens written in the text are text); "singles" ids are
encode(text, add_special_tokens=False), "special_ids" encode(text), "pairs" encode(a, b).

--write-unicode-tables writes engine/text/hf_unicode_tables.cc from the same probes.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import unicodedata
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import tokenizers  # noqa: E402
from tokenizers import (AddedToken, Regex, Tokenizer, models, normalizers,  # noqa: E402
                        pre_tokenizers, processors, trainers)

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from models.common.multilingual_corpus import (corpus_lines, sample_texts,  # noqa: E402
                                               tokenizer_json_texts)
from models.common.sentencepiece_training import (train_sentencepiece,  # noqa: E402
                                                  train_xlmr_sentencepiece)

# --- Unicode properties as tokenizers sees them --------------------------------------------
#
# tokenizers takes its character classes from several Rust crates, each with its own Unicode
# version (unicode_categories: 8.0; unicode-normalization-alignments: about 11; the standard
# library and regex: 16). They are probed here code point by code point, written as range tables
# for the engine (--write-unicode-tables) and recorded in the fixtures for the C++ test.

CODE_POINTS = [c for c in range(1, 0x110000) if not 0xD800 <= c <= 0xDFFF]


def _per_char(fn, sep: str) -> dict[int, str]:
    """fn applied to every code point, in batches joined by `sep`: {code point: result} where the
    result differs from the character itself."""
    changed = {}
    for start in range(0, len(CODE_POINTS), 4096):
        chunk = [c for c in CODE_POINTS[start:start + 4096] if chr(c) != sep]
        results = fn(sep.join(map(chr, chunk))).split(sep)
        assert len(results) == len(chunk), hex(chunk[0])
        changed.update((c, r) for c, r in zip(chunk, results) if r != chr(c))
    if fn(sep) != sep:
        changed[ord(sep)] = fn(sep)
    return changed


def _split_count(pre_tokenizer, want: int) -> list[int]:
    """Code points c for which pre_tokenizer cuts 'a' + c + 'a' into `want` pieces."""
    return [c for c in CODE_POINTS if len(pre_tokenizer.pre_tokenize_str(f"a{chr(c)}a")) == want]


# Oniguruma's general categories (two-letter names); Cn and Cs are left out.
GENERAL_CATEGORIES = ("Lu Ll Lt Lm Lo Mn Mc Me Nd Nl No Pc Pd Ps Pe Pi Pf Po Sm Sc Sk So Zs Zl Zp "
                      "Cc Cf Co")
# Regex classes the fixtures check over every code point.
REGEX_CLASSES = {"L": r"\p{L}", "N": r"\p{N}", "M": r"\p{M}", "P": r"\p{P}", "Lu": r"\p{Lu}",
                 "w": r"\w", "d": r"\d", "s": r"\s"}


def regex_matches(pattern: str, points: list[int]) -> list[int]:
    """The code points that tokenizers' Oniguruma matches with `pattern`, one character each."""
    split = pre_tokenizers.Split(Regex(pattern), "removed")
    matched = [1] if 1 in points and not split.pre_tokenize_str("\x01") else []
    for start in range(0, len(points), 4096):
        chunk = [c for c in points[start:start + 4096] if c != 1]
        kept = {ord(ch) for piece, _ in split.pre_tokenize_str("\x01".join(map(chr, chunk)))
                for ch in piece}
        matched += [c for c in chunk if c not in kept]
    return sorted(matched)


def regex_additions() -> list[list]:
    """Characters that tokenizers' Oniguruma (Unicode 16) has in a general category and Debian's
    (6.9.8, Unicode 14, as Python's unicodedata here) has as unassigned: [code, category, \\w]."""


    assert unicodedata.unidata_version == "14.0.0", unicodedata.unidata_version
    unassigned = [c for c in CODE_POINTS if unicodedata.category(chr(c)) == "Cn"]
    assigned = regex_matches(r"\P{Cn}", unassigned)
    word = set(regex_matches(r"\w", assigned))
    return sorted([c, category, c in word] for category in GENERAL_CATEGORIES.split()
                  for c in regex_matches(rf"\p{{{category}}}", assigned))


def unicode_properties() -> dict:
    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False,
                                       strip_accents=False, lowercase=False)
    bert_strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False,
                                            strip_accents=True, lowercase=False)
    cleaned = _per_char(clean.normalize_str, "|")
    nfd = _per_char(normalizers.NFD().normalize_str, "\x01")
    stripped = _per_char(bert_strip.normalize_str, "|")
    return {
        "sets": {
            "bert_removed": sorted([0] + [c for c, r in cleaned.items() if r == ""]),
            "bert_whitespace": sorted(c for c, r in cleaned.items() if r == " "),
            "whitespace": _split_count(pre_tokenizers.WhitespaceSplit(), 2),
            "bert_punctuation": _split_count(pre_tokenizers.Punctuation(), 3),
            "numeric": _split_count(pre_tokenizers.Digits(individual_digits=True), 3),
            "word": _split_count(pre_tokenizers.Whitespace(), 1),
            "combining_mark": sorted(
                c for c, r in _per_char(normalizers.StripAccents().normalize_str, "|").items()
                if r == ""),
            # Marks of category Mn: what BertNormalizer drops after NFD.
            "nonspacing_mark": sorted(c for c, r in stripped.items() if r == "" and c not in nfd),
            "canonical_decomposition": sorted(nfd),
            "compatibility_decomposition": sorted(
                _per_char(normalizers.NFKD().normalize_str, "\x01")),
        },
        "regex_additions": regex_additions(),
        "regex_classes": {name: regex_matches(pattern, CODE_POINTS)
                          for name, pattern in REGEX_CLASSES.items()},
        "maps": {
            "lowercase": _per_char(normalizers.Lowercase().normalize_str, "|"),
            "NFD": nfd,
            "NFKD": _per_char(normalizers.NFKD().normalize_str, "\x01"),
            "NFC": _per_char(normalizers.NFC().normalize_str, "\x01"),
            "NFKC": _per_char(normalizers.NFKC().normalize_str, "\x01"),
        },
    }


def code_ranges(points) -> list[list[int]]:
    ranges = []
    for c in sorted(points):
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return ranges


def lowercase_runs(lowercase: dict[int, str]) -> list[list[int]]:
    """Single-character mappings as runs [first, last, stride, delta]."""
    runs = []
    for c in sorted(lowercase):
        if len(lowercase[c]) != 1:
            continue
        delta = ord(lowercase[c]) - c
        if runs:
            first, last, stride, run_delta = runs[-1]
            if run_delta == delta and (c - last == stride or (first == last and c - last <= 2)):
                runs[-1] = [first, c, c - last, delta]
                continue
        runs.append([c, c, 1, delta])
    return runs


TABLE_SETS = ("bert_removed", "bert_punctuation", "numeric", "word", "combining_mark",
              "nonspacing_mark", "canonical_decomposition", "compatibility_decomposition")


def packed(entries) -> list[str]:
    """Table entries, as many to a 100-column line as fit."""
    lines = []
    for entry in entries:
        if lines and len(lines[-1]) + 1 + len(entry) <= 100:
            lines[-1] += " " + entry
        else:
            lines.append("    " + entry)
    return lines


def write_unicode_tables(path: Path, properties: dict) -> None:
    def camel(name):
        return "k" + "".join(part.title() for part in name.split("_"))

    out = ["// Generated by tests/reference/tokenizer_json_reference.py --write-unicode-tables "
           "from",
           f"// tokenizers {tokenizers.__version__}; do not edit. See hf_unicode_tables.h.",
           '#include "engine/text/hf_unicode_tables.h"', "", "// clang-format off",
           "namespace engine::hf {", ""]
    for name in TABLE_SETS:
        ranges = code_ranges(properties["sets"][name])
        out.append(f"const CodeRange {camel(name)}Ranges[] = {{")
        out += packed(f"{{0x{a:X}, 0x{b:X}}}," for a, b in ranges)
        out += ["};", f"const RangeTable {camel(name)}{{{camel(name)}Ranges, {len(ranges)}}};", ""]
    additions = []
    for c, category, word in properties["regex_additions"]:
        if additions and additions[-1][1] == c - 1 and additions[-1][2:] == [category, word]:
            additions[-1][1] = c
        else:
            additions.append([c, c, category, word])
    out.append("const CategoryRange kRegexAdditionList[] = {")
    out += packed(f'{{0x{a:X}, 0x{b:X}, "{cat}", {str(word).lower()}}},'
                  for a, b, cat, word in additions)
    out += ["};", "const CategoryTable kRegexAdditions{kRegexAdditionList, "
            f"{len(additions)}}};", ""]
    runs = lowercase_runs(properties["maps"]["lowercase"])
    out.append("const LowercaseRun kLowercaseRunList[] = {")
    out += packed(f"{{0x{a:X}, 0x{b:X}, {s}, {d}}}," for a, b, s, d in runs)
    out += ["};", f"const LowercaseTable kLowercaseRuns{{kLowercaseRunList, {len(runs)}}};", "",
            "}  // namespace engine::hf", "// clang-format on", ""]
    path.write_text("\n".join(out))


# --- the tokenizers under test ---------------------------------------------------------------

LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
                  r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
                 r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


class Case:
    """One tokenizer.json: the tokenizer, the engine options and the special ids expected."""

    def __init__(self, name, tokenizer, options=None, expected=None, edit=None):
        self.name, self.tokenizer, self.options = name, tokenizer, options or {}
        self.expected = expected or {}  # {"pad": token or None, ...}
        self.edit = edit  # a function changing the saved JSON


def train(tokenizer, trainer, lines):
    trainer.show_progress = False
    tokenizer.train_from_iterator(lines, trainer=trainer)
    return tokenizer


def ids_of(tokenizer, *tokens):
    return [(t, tokenizer.token_to_id(t)) for t in tokens]


def wordpiece_cases(lines, workdir: Path):
    from transformers import BertTokenizerFast

    uncased = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    uncased.normalizer = normalizers.BertNormalizer(lowercase=True)
    uncased.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    train(uncased, trainers.WordPieceTrainer(vocab_size=3000, special_tokens=BERT_SPECIALS), lines)
    uncased.post_processor = processors.BertProcessing(*ids_of(uncased, "[SEP]", "[CLS]"))
    uncased.add_tokens([AddedToken("hello world", normalized=True), AddedToken("Straße")])
    uncased.add_special_tokens([AddedToken("[NEW]", special=True)])
    vocab = workdir / "vocab.txt"
    pieces = sorted(uncased.get_vocab(with_added_tokens=False).items(), key=lambda kv: kv[1])
    vocab.write_text("".join(p + "\n" for p, _ in pieces), encoding="utf-8")
    bert_names = {"pad": "[PAD]", "unk": "[UNK]", "bos": "[CLS]", "eos": "[SEP]", "mask": "[MASK]"}

    cased = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    cased.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=None)
    cased.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    train(cased, trainers.WordPieceTrainer(vocab_size=3000, special_tokens=BERT_SPECIALS), lines)
    cased.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=ids_of(cased, "[CLS]", "[SEP]"))
    cased.add_tokens([AddedToken("COVID", single_word=True),
                      AddedToken("<ent>", lstrip=True, rstrip=True, normalized=False),
                      AddedToken("</ent>", lstrip=True, normalized=False)])

    plain = Tokenizer(models.WordPiece(unk_token="<unk>", continuing_subword_prefix="@@",
                                       max_input_chars_per_word=30))
    plain.normalizer = normalizers.Sequence(
        [normalizers.NFD(), normalizers.Lowercase(), normalizers.StripAccents()])
    plain.pre_tokenizer = pre_tokenizers.Whitespace()
    train(plain, trainers.WordPieceTrainer(vocab_size=2000, continuing_subword_prefix="@@",
                                           special_tokens=["<unk>", "<s>", "</s>"]), lines)
    plain.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B:1 </s>:1", special_tokens=ids_of(plain, "</s>"))

    converted = []
    for name, kwargs in [("bert_converted_uncased", {}),
                         ("bert_converted_cased_strip",
                          dict(do_lower_case=False, strip_accents=True,
                               tokenize_chinese_chars=False))]:
        fast = BertTokenizerFast(vocab_file=str(vocab), **kwargs)
        converted.append(Case(name, Tokenizer.from_str(fast.backend_tokenizer.to_str()),
                              options=transformers_options(fast), expected=bert_names))
    return [Case("bert_uncased", uncased, expected=bert_names),
            Case("bert_cased_chinese", cased, expected=bert_names),
            Case("wordpiece_whitespace", plain,
                 expected={"pad": None, "unk": "<unk>", "bos": "<s>", "eos": "</s>", "mask": None}),
            *converted]


def transformers_options(fast) -> dict:
    """What an exporter copies from tokenizer_config.json: the special tokens that are set."""
    names = ("pad_token", "unk_token", "bos_token", "eos_token", "mask_token", "cls_token",
             "sep_token")
    return {n: str(getattr(fast, n)) for n in names if getattr(fast, n, None) is not None}


def legacy_merges(data: dict) -> None:
    """The old merges form, one "left right" string per merge."""
    data["model"]["merges"] = [f"{a} {b}" for a, b in data["model"]["merges"]]


def byte_level_cases(lines):
    def bpe(pre_tokenizer, vocab_size, specials, **model):
        tok = Tokenizer(models.BPE(**model))
        tok.pre_tokenizer = pre_tokenizer
        train(tok, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()), lines)
        return tok

    gpt2 = bpe(pre_tokenizers.ByteLevel(add_prefix_space=False), 3000, ["<|endoftext|>"])
    gpt2.post_processor = processors.ByteLevel(trim_offsets=True)

    roberta = bpe(pre_tokenizers.ByteLevel(add_prefix_space=True), 3000,
                  ["<s>", "<pad>", "</s>", "<unk>",
                   AddedToken("<mask>", lstrip=True, special=True)])
    roberta.post_processor = processors.RobertaProcessing(*ids_of(roberta, "</s>", "<s>"))
    # Each piece of text between added tokens gets ByteLevel's prefix space.
    roberta.add_tokens([AddedToken("<ent>", normalized=False)])

    modern = bpe(pre_tokenizers.ByteLevel(add_prefix_space=False), 3000,
                 [AddedToken(t, special=True, normalized=False) for t in BERT_SPECIALS])
    modern.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=ids_of(modern, "[CLS]", "[SEP]"))
    modern.add_tokens([AddedToken("|||IP_ADDRESS|||"), AddedToken("|||EMAIL_ADDRESS|||")])

    llama3_specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>"]
    llama3 = bpe(pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)]),
        3000, llama3_specials, ignore_merges=True)
    llama3.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
            special_tokens=ids_of(llama3, "<|begin_of_text|>"))])

    qwen = bpe(pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)]),
        3000, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    qwen.normalizer = normalizers.NFC()
    qwen.post_processor = processors.ByteLevel(trim_offsets=False)
    qwen.add_tokens([AddedToken("<think>", normalized=False),
                     AddedToken("</think>", normalized=False)])

    return [
        Case("gpt2_legacy_merges", gpt2, edit=legacy_merges,
             expected={"pad": "<|endoftext|>", "unk": None, "bos": None, "eos": "<|endoftext|>",
                       "mask": None}),
        Case("roberta", roberta, options={"mask_token": "<mask>", "pad_token": "<pad>"},
             expected={"pad": "<pad>", "unk": "<unk>", "bos": "<s>", "eos": "</s>",
                       "mask": "<mask>"}),
        Case("modernbert", modern,
             expected={"pad": "[PAD]", "unk": "[UNK]", "bos": "[CLS]", "eos": "[SEP]",
                       "mask": "[MASK]"}),
        Case("llama3", llama3, options={"eos_token": "<|end_of_text|>"},
             expected={"pad": None, "unk": None, "bos": "<|begin_of_text|>",
                       "eos": "<|end_of_text|>", "mask": None}),
        Case("qwen2", qwen, options={"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
             expected={"pad": "<|endoftext|>", "unk": None, "bos": None, "eos": "<|im_end|>",
                       "mask": None}),
    ]


def byte_fallback_vocab(data: dict) -> None:
    """A BPE model trained without them gets the 256 <0xXX> byte tokens, byte_fallback and fused
    unknown tokens, as Llama 2 and Mistral have them."""
    vocab = data["model"]["vocab"]
    for byte in range(256):
        vocab.setdefault(f"<0x{byte:02X}>", len(vocab))
    data["model"].update(byte_fallback=True, fuse_unk=True, unk_token="<unk>")


def unigram_byte_fallback(data: dict) -> None:
    vocab = data["model"]["vocab"]
    lowest = min(score for _, score in vocab)
    vocab += [[f"<0x{byte:02X}>", lowest - 1.0] for byte in range(256)]
    data["model"]["byte_fallback"] = True


def sentencepiece_cases(lines, workdir: Path):
    from transformers import LlamaTokenizerFast, T5TokenizerFast, XLMRobertaTokenizerFast


    xlmr_model = workdir / "xlmr.model"
    train_xlmr_sentencepiece(xlmr_model, vocab_size=2000, seed=3)
    t5_model = workdir / "t5.model"
    train_sentencepiece(t5_model, lines, model_type="unigram", vocab_size=2000,
                        hard_vocab_limit=False, character_coverage=0.999,
                        normalization_rule_name="nmt_nfkc_cf", pad_id=0, eos_id=1, unk_id=2,
                        bos_id=-1)
    llama_model = workdir / "llama.model"
    train_sentencepiece(llama_model, lines, model_type="bpe", vocab_size=2000,
                        hard_vocab_limit=False, character_coverage=0.995, byte_fallback=True,
                        normalization_rule_name="identity", add_dummy_prefix=True,
                        unk_id=0, bos_id=1, eos_id=2, pad_id=-1)
    cases = []
    for name, fast in [
            ("xlmr_converted", XLMRobertaTokenizerFast(vocab_file=str(xlmr_model))),
            ("t5_converted", T5TokenizerFast(vocab_file=str(t5_model), extra_ids=100)),
            ("llama2_legacy_converted", LlamaTokenizerFast(vocab_file=str(llama_model), legacy=True,
                                                           from_slow=True)),
            ("llama2_converted", LlamaTokenizerFast(vocab_file=str(llama_model), legacy=False,
                                                    from_slow=True))]:
        expected = {key: getattr(fast, f"{key}_token", None)
                    for key in ("pad", "unk", "bos", "eos", "mask")}
        tokenizer = Tokenizer.from_str(fast.backend_tokenizer.to_str())
        if name.startswith("llama2"):
            # Text after an added token is not at the start: no prepended "▁" for "first".
            tokenizer.add_tokens([AddedToken("<ent>", normalized=False),
                                  AddedToken("</ent>", normalized=True)])
        cases.append(Case(name, tokenizer, options=transformers_options(fast), expected=expected))

    mistral = Tokenizer(models.BPE(unk_token="<unk>"))
    mistral.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    train(mistral, trainers.BpeTrainer(vocab_size=2000, limit_alphabet=300,
                                       special_tokens=["<unk>", "<s>", "</s>"]), lines)
    mistral.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s>:1 $B:1", special_tokens=ids_of(mistral, "<s>"))
    mistral.add_tokens([AddedToken("<ent>", normalized=False)])

    unigram = Tokenizer(models.Unigram())
    unigram.normalizer = normalizers.NFKC()
    unigram.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always", split=True)
    train(unigram, trainers.UnigramTrainer(vocab_size=1500, unk_token="<unk>",
                                           special_tokens=["<unk>", "<s>", "</s>", "<pad>"]), lines)
    unigram.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=ids_of(unigram, "<s>", "</s>"))
    unigram.add_tokens([AddedToken("<ent>", normalized=False, lstrip=True)])
    sp_names = {"pad": "<pad>", "unk": "<unk>", "bos": "<s>", "eos": "</s>", "mask": None}
    return cases + [
        Case("mistral_bpe_byte_fallback", mistral, edit=byte_fallback_vocab,
             expected={**sp_names, "pad": None}),
        Case("unigram_metaspace_byte_fallback", unigram, edit=unigram_byte_fallback,
             expected=sp_names),
    ]


def other_cases(lines):
    words = Tokenizer(models.WordLevel(unk_token="<unk>"))
    words.normalizer = normalizers.Sequence([
        normalizers.Nmt(), normalizers.Strip(), normalizers.Lowercase(),
        normalizers.Replace(Regex(r"\d"), "0"), normalizers.Replace("ß", "ss")])
    words.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation("contiguous"),
        pre_tokenizers.Digits(individual_digits=False), pre_tokenizers.CharDelimiterSplit("-")])
    train(words, trainers.WordLevelTrainer(vocab_size=3000, special_tokens=["<unk>", "<pad>"]),
          lines)

    splits = Tokenizer(models.BPE(unk_token="<unk>", continuing_subword_prefix="##",
                                  end_of_word_suffix="</w>"))
    splits.normalizer = normalizers.Sequence(
        [normalizers.NFKD(), normalizers.StripAccents(), normalizers.Strip(left=False),
         normalizers.Prepend("^")])
    splits.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(" ", "merged_with_previous"),
        pre_tokenizers.Split(Regex(r"[,.;:!?]"), "merged_with_next"),
        pre_tokenizers.Split(Regex(r"\p{N}"), "contiguous"),
        pre_tokenizers.Split(Regex(r"[\p{L}\p{M}]+"), "removed", invert=True),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Punctuation("removed")])
    train(splits, trainers.BpeTrainer(vocab_size=2500, continuing_subword_prefix="##",
                                      end_of_word_suffix="</w>", special_tokens=["<unk>", "<cls>"]),
          lines)
    splits.post_processor = processors.BertProcessing(*ids_of(splits, "<cls>", "<cls>"))

    chunks = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
    chunks.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False,
                                                   strip_accents=True, lowercase=False)
    chunks.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.FixedLength(length=4)])
    train(chunks, trainers.BpeTrainer(vocab_size=1500, special_tokens=["<unk>"]), lines)
    none = {"pad": None, "unk": "<unk>", "bos": None, "eos": None, "mask": None}
    return [
        Case("wordlevel_misc", words, expected={**none, "pad": "<pad>"}),
        Case("bpe_split_behaviors", splits, expected={**none, "bos": "<cls>", "eos": "<cls>"}),
        Case("bpe_fixed_length", chunks, expected=none),
    ]


# --- the fixtures ---------------------------------------------------------------------------

# Byte strings that are not UTF-8: the engine reads them as Python's "replace" decoding does.
BROKEN_UTF8 = [b"abc\xff\xfe def", b"\xe2\x82", b"ok\xed\xa0\x80ok", b"x\xf0\x9f\x98 y",
               b"\xc0\xaf\x80", b"caf\xc3"]


def input_texts() -> list[dict]:
    texts = [{"text": t} for t in sample_texts() + tokenizer_json_texts()]
    return texts + [{"base64": base64.b64encode(b).decode()} for b in BROKEN_UTF8]


def text_of(entry: dict) -> str:
    if "text" in entry:
        return entry["text"]
    return base64.b64decode(entry["base64"]).decode("utf-8", errors="replace")


def pair_indices(texts: list[dict]) -> list[list[int]]:
    short = [i for i, t in enumerate(texts) if "text" in t and len(t["text"]) < 400]
    pairs = [[short[k], short[(k * 7 + 3) % len(short)]] for k in range(0, len(short), 2)]
    empty = texts.index({"text": ""})
    return pairs + [[empty, short[0]], [short[0], empty], [empty, empty]]


def record(case: Case, path: Path, texts: list[str], pairs: list[list[int]]) -> dict:
    data = json.loads(case.tokenizer.to_str())
    if case.edit:
        case.edit(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    tokenizer = Tokenizer.from_file(str(path))
    # The engine's policy: special tokens written in the text are text.
    tokenizer.encode_special_tokens = True
    singles = []
    for text in texts:
        plain = tokenizer.encode(text, add_special_tokens=False)
        full = tokenizer.encode(text)
        singles.append({"ids": plain.ids, "pieces": [tokenizer.id_to_token(i) for i in plain.ids],
                        "special_ids": full.ids, "type_ids": full.type_ids})
    pair_results = []
    for a, b in pairs:
        encoding = tokenizer.encode(texts[a], texts[b])
        pair_results.append({"ids": encoding.ids, "type_ids": encoding.type_ids})
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    processor = tokenizer.post_processor
    return {
        "name": case.name, "file": path.name, "options": case.options,
        "vocab_size": max(vocab.values()) + 1,
        "special_ids": {k: (tokenizer.token_to_id(v) if v else -1)
                        for k, v in case.expected.items()},
        "special_token_count": [processor.num_special_tokens_to_add(False) if processor else 0,
                                processor.num_special_tokens_to_add(True) if processor else 0],
        "singles": singles, "pairs": pair_results,
    }


def write_fixtures(out: Path, properties: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    lines = corpus_lines(seed=11, n=3000)
    entries = input_texts()
    texts = [text_of(e) for e in entries]
    pairs = pair_indices(entries)
    with tempfile.TemporaryDirectory() as scratch:
        cases = (wordpiece_cases(lines, Path(scratch)) + byte_level_cases(lines)
                 + sentencepiece_cases(lines, Path(scratch)) + other_cases(lines))
        results = [record(case, out / f"{case.name}.json", texts, pairs) for case in cases]
    reference = {"texts": entries, "pairs": pairs, "tokenizers": results}
    (out / "reference.json").write_text(json.dumps(reference, ensure_ascii=False), encoding="utf-8")
    (out / "unicode.json").write_text(json.dumps({
        "sets": {name: code_ranges(points) for name, points in properties["sets"].items()},
        "regex_classes": {name: code_ranges(points)
                          for name, points in properties["regex_classes"].items()},
        "maps": {name: {str(c): v for c, v in mapping.items()}
                 for name, mapping in properties["maps"].items()},
    }, ensure_ascii=False), encoding="utf-8")
    for result in results:
        print(f"{result['name']}: vocabulary {result['vocab_size']}, "
              f"{sum(len(s['ids']) for s in result['singles'])} tokens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder for the tokenizer files and references")
    parser.add_argument("--write-unicode-tables", type=Path, metavar="FILE",
                        help="write engine/text/hf_unicode_tables.cc from this tokenizers")
    args = parser.parse_args()
    if not args.out and not args.write_unicode_tables:
        parser.error("give --out or --write-unicode-tables")
    properties = unicode_properties()
    if args.write_unicode_tables:
        write_unicode_tables(args.write_unicode_tables, properties)
    if args.out:
        write_fixtures(args.out, properties)


if __name__ == "__main__":
    main()
