"""A small SentencePiece BPE model laid out like Gemma's ``tokenizer.model``.

Gemma's tokenizer is a SentencePiece **BPE** model with byte fallback, the
identity normalizer (no NFKC), no dummy prefix and no whitespace folding;
its trainer spec (quoted in transformers' ``GemmaConverter``) has
split_by_unicode_script, split_by_number, split_by_whitespace, split_digits,
allow_whitespace_only_pieces and byte_fallback all true and
treat_whitespace_as_suffix false.  Piece layout: 0=<pad> 1=<eos> 2=<bos>
3=<unk>, then user-defined pieces (<mask>, <2mass>, [@BOS@], <unusedN>,
<start_of_turn>, <end_of_turn>, newline runs, whitespace runs, HTML tags),
then the 256 byte pieces <0x00>..<0xFF>, then the learned merges.  The tiny
model reproduces that layout with fewer user-defined pieces.
"""

from __future__ import annotations

from pathlib import Path

import sentencepiece as spm

from models.common.multilingual_corpus import corpus_lines
from models.common.sentencepiece_training import train_sentencepiece

# FlagLLMReranker's default prompt (FlagEmbedding 1.4.2,
# inference/reranker/decoder_only/base.py:354) and pair layout.
DEFAULT_PROMPT = ("Given a query A and a passage B, determine whether the passage contains an "
                  "answer to the query by providing a prediction of either 'Yes' or 'No'.")
QUERY_PREFIX = "A: "
PASSAGE_PREFIX = "B: "
SEPARATOR = "\n"

# User-defined (type 4) pieces, in Gemma's order.  SentencePiece matches them
# atomically before BPE; HF's converter turns them into non-special added
# tokens (<start_of_turn>/<end_of_turn> special).  Whitespace runs are given
# escaped ("\u2581"), which is how SentencePiece sees spaces after
# normalization.
USER_DEFINED = (["<mask>", "<2mass>", "[@BOS@]"]
                + [f"<unused{i}>" for i in range(8)]
                + ["<start_of_turn>", "<end_of_turn>"]
                + ["\n" * n for n in range(1, 9)]
                + ["\u2581" * n for n in range(2, 9)]
                + ["<table>", "<tr>", "<td>", "<h1>", "<b>", "</b>"])

# Pieces FlagLLMReranker must find (it looks up tokenizer('Yes')[0]; with no
# dummy prefix that is the piece "Yes"; "\u2581Yes" is the mid-sentence form).
REQUIRED_PIECES = ("Yes", "\u2581Yes", "\n")


def _training_lines(seed: int) -> list[str]:
    """The shared multilingual corpus plus reranker-shaped lines, so the
    prompt, the A:/B: prefixes and 'Yes' get real merges rather than single
    characters."""
    lines = corpus_lines(seed=seed)
    extra = []
    for i in range(0, 200, 2):
        extra.append(f"{QUERY_PREFIX}{lines[i]}{SEPARATOR}{PASSAGE_PREFIX}{lines[i + 1]}"
                      f"{SEPARATOR}{DEFAULT_PROMPT}")
        extra.append("Yes" if i % 4 else "Yes, it is. No. Yes")
    return lines + extra


# What Gemma's and Llama's SentencePiece models share: BPE with byte fallback over every
# character, the identity normalizer keeping every space.
_BYTE_FALLBACK_BPE = dict(model_type="bpe", hard_vocab_limit=False, character_coverage=1.0,
                          byte_fallback=True, normalization_rule_name="identity",
                          remove_extra_whitespaces=False)


def train_gemma_sentencepiece(path: Path, vocab_size: int = 2000, seed: int = 0) -> int:
    """Train the model into ``path``; return its piece count."""
    train_sentencepiece(
        path, _training_lines(seed), vocab_size=vocab_size, **_BYTE_FALLBACK_BPE,
        # normalizer_spec as in Gemma's model: no dummy prefix (HF: "The Gemma tokenizer never
        # adds a prefix space").
        add_dummy_prefix=False,
        # trainer_spec as listed in transformers' GemmaConverter docstring.
        split_by_unicode_script=True,
        split_by_number=True,
        split_by_whitespace=True,
        split_digits=True,
        treat_whitespace_as_suffix=False,
        allow_whitespace_only_pieces=True,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
        user_defined_symbols=USER_DEFINED,
    )
    sp = spm.SentencePieceProcessor(model_file=str(path))
    missing = [p for p in REQUIRED_PIECES if sp.piece_to_id(p) == sp.unk_id()]
    if missing:
        raise RuntimeError(f"trained tokenizer lacks pieces {missing!r}; raise vocab_size")
    check_gemma_layout(path)
    return sp.get_piece_size()


def check_gemma_layout(path: Path) -> dict:
    """Return {pad, eos, bos, unk} ids after checking Gemma's piece layout.

    Pieces are checked by id rather than through trainer_spec's pad_id/bos_id
    fields, which is what both HF tokenizers rely on."""
    sp = spm.SentencePieceProcessor(model_file=str(path))
    want = {"pad": (0, "<pad>"), "eos": (1, "<eos>"), "bos": (2, "<bos>"), "unk": (3, "<unk>")}
    got = {k: sp.id_to_piece(i) for k, (i, _) in want.items()}
    if got != {k: p for k, (_, p) in want.items()} or sp.unk_id() != 3:
        raise ValueError(f"{path}: expected Gemma layout <pad>=0 <eos>=1 <bos>=2 <unk>=3, "
                         f"got {got}, unk_id {sp.unk_id()}")
    if sp.piece_to_id("<0x00>") == sp.unk_id():
        raise ValueError(f"{path}: no byte-fallback pieces (<0x00>..<0xFF>)")
    return {k: i for k, (i, _) in want.items()}


def train_llama_sentencepiece(path: Path, vocab_size: int = 2000, seed: int = 0) -> int:
    """A SentencePiece BPE model laid out like Llama's (and MiniCPM's, whose tokenizer is a
    LlamaTokenizer): 0=<unk> 1=<s> 2=</s>, no <pad>, byte fallback, a dummy prefix, the identity
    normalizer, digits split; trained on the reranker-shaped lines. Returns its piece count."""
    train_sentencepiece(
        path, _training_lines(seed), vocab_size=vocab_size, **_BYTE_FALLBACK_BPE,
        add_dummy_prefix=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
    )
    sp = spm.SentencePieceProcessor(model_file=str(path))
    if [sp.id_to_piece(i) for i in range(3)] != ["<unk>", "<s>", "</s>"]:
        raise RuntimeError(f"{path}: not the Llama layout <unk>=0 <s>=1 </s>=2")
    return sp.get_piece_size()
