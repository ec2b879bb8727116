"""SentencePiece models for tiny test checkpoints, and the XLM-R piece layout.

``train_sentencepiece`` is the one place that runs the trainer; the XLM-R
(unigram) model is defined here, the Gemma (BPE) one in
``models.llm_reranker.tokenizer``.  ``check_xlmr_layout`` is what the XLM-R
exporters (cross_encoder, bge_m3) require of any ``sentencepiece.bpe.model``,
tiny or published.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import sentencepiece as spm

from models.common.multilingual_corpus import corpus_lines

XLMR_SPM_FILE = "sentencepiece.bpe.model"


def train_sentencepiece(path: Path, lines, **options) -> None:
    """Train a model on ``lines`` with the trainer ``options`` and write it to ``path``."""
    # Trained in memory and written in one go, so ``path`` never holds a
    # partial model.
    buf = tempfile.SpooledTemporaryFile()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=buf,
        **options,
        # One thread keeps EM summation order, hence the model, deterministic.
        num_threads=1,
        minloglevel=2,
    )
    buf.seek(0)
    path.write_bytes(buf.read())


def train_xlmr_sentencepiece(path: Path, vocab_size: int, seed: int) -> int:
    """Train a unigram SentencePiece model laid out like XLM-R's; return its size.

    XLM-R's ``sentencepiece.bpe.model`` is (despite its name) a unigram model
    with nmt_nfkc normalization and pieces 0=<unk>, 1=<s>, 2=</s>, no <pad>
    piece; HF then maps ids as <s>=0, <pad>=1, </s>=2, <unk>=3, others +1.
    """
    train_sentencepiece(
        path, corpus_lines(seed=seed),
        model_type="unigram",
        vocab_size=vocab_size,
        hard_vocab_limit=False,
        character_coverage=1.0,
        normalization_rule_name="nmt_nfkc",
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
    )
    return spm.SentencePieceProcessor(model_file=str(path)).get_piece_size()


def check_xlmr_layout(spm_path: Path) -> int:
    """Check the SentencePiece model has the XLM-R id layout; return its size."""
    sp = spm.SentencePieceProcessor(model_file=str(spm_path))
    got = (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id())
    if got != (0, 1, 2, -1):
        raise ValueError(f"{spm_path}: expected XLM-R piece layout unk=0 bos=1 eos=2 no pad, "
                         f"got unk,bos,eos,pad={got}")
    return sp.get_piece_size()
