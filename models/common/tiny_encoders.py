"""Tiny random encoders and decoders of the real architectures, for tests and demos: a
transformers config class with a few layers, a tokenizer made on the spot in the layout the
published checkpoints of that architecture use (BERT's WordPiece with tokenizer.json and
vocab.txt; ModernBERT's byte-level BPE with [CLS] $A [SEP]; Qwen3's NFC + Qwen split + byte-level
BPE ending in <|endoftext|>, padded on the left, which Qwen2 shares; XLM-R's unigram SentencePiece
converted to tokenizer.json by transformers, as e5-multilingual ships it). models/embedder and
models/cross_encoder put their heads on these."""

from __future__ import annotations

from pathlib import Path

from models.common.wordpiece_vocab import write_vocab

ARCHITECTURES = ("bert", "modernbert", "qwen3", "qwen2", "xlm-roberta")

# Qwen2's and Qwen3's pre-tokenizer split (their tokenizer.json), digits one by one.
QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+"
              r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def _byte_level_tokenizer(flavour: str, vocab_size: int, max_positions: int,
                          appends_eos: bool = True):
    """A byte-level BPE trained here on the multilingual corpus: ModernBERT's layout ([CLS] $A
    [SEP]) or Qwen3-Embedding's (NFC, the Qwen split, $A <|endoftext|>, left padding)."""
    from tokenizers import (Regex, Tokenizer, decoders, models, normalizers,  # noqa: PLC0415
                            pre_tokenizers, processors, trainers)
    from transformers import PreTrainedTokenizerFast  # noqa: PLC0415

    from models.common.multilingual_corpus import corpus_lines  # noqa: PLC0415

    tokenizer = Tokenizer(models.BPE())
    if flavour == "qwen3":
        specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        tokenizer.normalizer = normalizers.NFC()
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        specials = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    lines = corpus_lines()
    if flavour == "qwen3":
        # The answers LLM rerankers read their score from ('yes'/'no' as Qwen3-Reranker,
        # '1'/'0' as mxbai-rerank-v2) are whole tokens of the published vocabularies.
        lines += ["yes", "no", "yes no", "no, yes"] * 500
    tokenizer.train_from_iterator(lines, trainer)
    ids = {token: tokenizer.token_to_id(token) for token in specials}
    if flavour == "qwen3" and not appends_eos:
        # The chat models' tokenizer (Qwen3-Reranker, Qwen2.5): nothing added around a text.
        return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|im_end|>",
                                       pad_token="<|endoftext|>", padding_side="left",
                                       model_max_length=max_positions), ids
    if flavour == "qwen3":
        tokenizer.post_processor = processors.TemplateProcessing(
            single="$A <|endoftext|>", pair="$A <|endoftext|> $B:1 <|endoftext|>:1",
            special_tokens=[("<|endoftext|>", ids["<|endoftext|>"])])
        return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>",
                                       pad_token="<|endoftext|>", padding_side="left",
                                       model_input_names=["input_ids", "attention_mask"],
                                       model_max_length=max_positions), ids
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                                   mask_token="[MASK]", model_max_length=max_positions,
                                   model_input_names=["input_ids", "attention_mask"]), ids


def tiny_config(architecture: str, directory: Path, hidden: int = 32, layers: int = 2,
                heads: int = 4, max_positions: int = 512, appends_eos: bool = True,
                **config_keys):
    """The transformers config of a tiny ``architecture``, with its tokenizer saved in
    ``directory``; ``config_keys`` (e.g. num_labels) go to the config class. ``appends_eos``
    false gives Qwen decoders the chat models' tokenizer, which adds nothing to a text, rather
    than Qwen3-Embedding's, which ends each with <|endoftext|>."""
    from transformers import (BertConfig, BertTokenizerFast, ModernBertConfig,  # noqa: PLC0415
                              Qwen2Config, Qwen3Config, XLMRobertaConfig,
                              XLMRobertaTokenizerFast)

    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture {architecture!r} is not one of {ARCHITECTURES}")
    directory.mkdir(parents=True, exist_ok=True)
    if architecture == "bert":
        vocab = write_vocab(directory / "vocab.txt")
        tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True,
                                      model_max_length=max_positions)
        config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden,
                            num_hidden_layers=layers, num_attention_heads=heads,
                            intermediate_size=hidden * 2, max_position_embeddings=max_positions,
                            **config_keys)
    elif architecture == "modernbert":
        tokenizer, ids = _byte_level_tokenizer("modernbert", 1200, max_positions)
        # Three layers, global attention every second one and a 16-token local window, so that
        # the tests' sequences pass the window: local and global layers both run.
        config = ModernBertConfig(
            vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
            num_hidden_layers=max(layers, 3), num_attention_heads=heads,
            max_position_embeddings=max_positions, global_attn_every_n_layers=2,
            local_attention=16, pad_token_id=ids["[PAD]"], bos_token_id=ids["[CLS]"],
            eos_token_id=ids["[SEP]"], cls_token_id=ids["[CLS]"], sep_token_id=ids["[SEP]"],
            reference_compile=False, **config_keys)
    elif architecture == "xlm-roberta":
        from models.common.sentencepiece_training import (  # noqa: PLC0415
            XLMR_SPM_FILE, train_xlmr_sentencepiece)

        pieces = train_xlmr_sentencepiece(directory / XLMR_SPM_FILE, 1000, seed=0)
        tokenizer = XLMRobertaTokenizerFast(vocab_file=str(directory / XLMR_SPM_FILE),
                                            model_max_length=max_positions)
        config = XLMRobertaConfig(
            vocab_size=pieces + 2, hidden_size=hidden, num_hidden_layers=layers,
            num_attention_heads=heads, intermediate_size=hidden * 2,
            max_position_embeddings=max_positions + 2,  # positions start after the pad id
            type_vocab_size=1, layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0,
            eos_token_id=2, **config_keys)
    else:  # qwen3, qwen2: one tokenizer layout; Qwen2 has biases on q, k, v and no q/k norms
        tokenizer, ids = _byte_level_tokenizer("qwen3", 1200, max_positions, appends_eos)
        config_class = Qwen3Config if architecture == "qwen3" else Qwen2Config
        keys = dict(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 2,
                    num_hidden_layers=layers, num_attention_heads=heads,
                    num_key_value_heads=heads // 2, max_position_embeddings=max_positions,
                    rope_theta=1000000.0, pad_token_id=ids["<|endoftext|>"],
                    eos_token_id=ids["<|endoftext|>"], bos_token_id=None,
                    tie_word_embeddings=True)
        if architecture == "qwen3":
            keys["head_dim"] = hidden // heads
        config = config_class(**{**keys, **config_keys})
    tokenizer.save_pretrained(directory)
    return config
