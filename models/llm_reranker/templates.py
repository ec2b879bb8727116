"""How each published LLM reranker writes a (query, passage) pair and reads a score from it, as
data: the manifest's ``template`` and ``score`` blocks, which the engine's llm_reranker adapter
carries out (models/llm_reranker/llm_reranker_adapter.cc; docs/models.md).

A sequence is ``prefix + query part + separator + passage part + suffix``. Each segment is a list
of pieces, each tokenized on its own as the reference tokenizes it: ``{"ids": [...]}`` (fixed
text, special tokens read as such, as the reference's tokenizer gives them) or ``{"text": "..."}``
(tokenized by the engine, with ``{query}``, ``{passage}`` or ``{instruction}`` filled in). The query and passage parts are cut by the reference's rule
(``truncation``), and the score is one rule over the logits of a few tokens at the last position
(``score``); the graph computes those logits only, never the whole output head.

Adding a reranker that writes its pairs another way is one entry in TEMPLATES, and a new
truncation rule only if none of the engine's fits (docs/adding-a-model.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from models.llm_reranker.tokenizer import DEFAULT_PROMPT as FLAG_LLM_PROMPT


@dataclass(frozen=True)
class RerankTemplate:
    reference: str                  # the implementation whose pairs and scores these are
    truncation: str                 # flag_llm | whole_text | mxbai (the engine's rules)
    prefix: tuple[str, ...]         # before the query part, each text tokenized on its own
    query: str                      # {instruction}, {query}
    separator: tuple[str, ...]      # between the query and the passage parts
    passage: str                    # {passage}
    suffix: tuple[str, ...]         # after the passage part; "{instruction}" may be one of them
    instruction_format: str         # what {instruction} becomes when there is an instruction
    default_instruction: str | None
    score_rule: str                 # logit | yes_probability | logit_difference | layer_head
    score_tokens: tuple[str, ...]   # the tokens whose logits the score reads, in rule order
    token_lookup: str               # "encode": tokenizer(text)[0]; "vocab": convert_tokens_to_ids;
                                    # "none": layer_head reads a layer's score head, no token
    max_length: int                 # the reference's default max_length
    bos: bool = False               # the tokenizer's <bos> starts the prefix
    # task.normalize: sigmoid(score - shift), the shift by the directory's name (mxbai-rerank's
    # estimated_max / 2 for its published models), else the default.
    normalize_shift: float = 0.0
    normalize_shift_by_name: tuple[tuple[str, float], ...] = ()


# FlagEmbedding 1.4.2's FlagLLMReranker (inference/reranker/decoder_only/base.py): "A: " query,
# "\n", "B: " passage, "\n", the prompt (models/llm_reranker/tokenizer.py); the logit of 'Yes'.
# FlagEmbedding 1.4.2's LayerWiseFlagLLMReranker (decoder_only/layerwise.py) writes the same pair;
# its score is the one output of the score head of the chosen cutoff layer (LayerWiseHead) at the
# last position.
# The Qwen3-Reranker model card's format_instruction, prefix and suffix; P(yes) from the
# log-softmax over the 'no' and 'yes' logits.
QWEN3_SYSTEM = ('<|im_start|>system\nJudge whether the Document meets the requirements based on '
                'the Query and the Instruct provided. Note that the answer can only be "yes" or '
                '"no".<|im_end|>\n<|im_start|>user\n')
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_INSTRUCTION = ("Given a web search query, retrieve relevant passages that answer the query")
# mxbai-rerank 0.1.6's MxbaiRerankV2: the chat template around "query: ...", "\n",
# "document: ...", "\n", its task prompt; the logit of '1' minus that of '0'.
MXBAI_PREFIX = ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
                "assistant.<|im_end|>\n<|im_start|>user\n")
MXBAI_TASK = ("You are a search relevance expert who evaluates how well documents match search "
              "queries. For each query-document pair, carefully analyze the semantic relationship "
              "between them, then provide your binary relevance judgment (0 for not relevant, 1 "
              "for relevant).\nRelevance:")
MXBAI_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"

TEMPLATES = {
    "bge-reranker-v2-gemma": RerankTemplate(
        reference="FlagEmbedding FlagLLMReranker", truncation="flag_llm", bos=True, prefix=(),
        query="A: {query}", separator=("\n",), passage="B: {passage}",
        suffix=("\n", "{instruction}"),
        instruction_format="{instruction}", default_instruction=FLAG_LLM_PROMPT,
        score_rule="logit", score_tokens=("Yes",), token_lookup="encode", max_length=512),
    "bge-reranker-v2-minicpm-layerwise": RerankTemplate(
        reference="FlagEmbedding LayerWiseFlagLLMReranker", truncation="flag_llm", bos=True,
        prefix=(), query="A: {query}", separator=("\n",), passage="B: {passage}",
        suffix=("\n", "{instruction}"),
        instruction_format="{instruction}", default_instruction=FLAG_LLM_PROMPT,
        score_rule="layer_head", score_tokens=(), token_lookup="none", max_length=512),
    "qwen3-reranker": RerankTemplate(
        reference="Qwen3-Reranker model card (transformers)", truncation="whole_text",
        prefix=(QWEN3_SYSTEM,),
        query="<Instruct>: {instruction}\n<Query>: {query}\n<Document>:", separator=(),
        passage=" {passage}", suffix=(QWEN3_SUFFIX,),
        instruction_format="{instruction}", default_instruction=QWEN3_INSTRUCTION,
        score_rule="yes_probability", score_tokens=("yes", "no"), token_lookup="vocab",
        max_length=8192),
    "mxbai-rerank-v2": RerankTemplate(
        reference="mxbai-rerank MxbaiRerankV2", truncation="mxbai", prefix=(MXBAI_PREFIX,),
        query="{instruction}query: {query}", separator=("\n",), passage="document: {passage}",
        suffix=("\n", MXBAI_TASK, MXBAI_SUFFIX), instruction_format="instruction: {instruction}\n",
        default_instruction=None, score_rule="logit_difference", score_tokens=("1", "0"),
        token_lookup="encode", max_length=8192, normalize_shift=6.0,
        normalize_shift_by_name=(("mxbai-rerank-base-v2", 4.5), ("mxbai-rerank-large-v2", 6.0))),
}

# Which template a published directory's decoder gets when --template does not say.
DEFAULT_TEMPLATE = {"gemma": "bge-reranker-v2-gemma", "gemma2": "bge-reranker-v2-gemma",
                    "qwen3": "qwen3-reranker", "qwen2": "mxbai-rerank-v2",
                    "minicpm": "bge-reranker-v2-minicpm-layerwise"}


def _fixed(texts: tuple[str, ...], tokenizer) -> list[dict]:
    """A fixed segment's pieces: each text as the reference tokenizer's ids (special tokens read
    as such), except a placeholder, left as text for the engine."""
    return [{"text": text} if text == "{instruction}" else
            {"ids": tokenizer(text, add_special_tokens=False)["input_ids"], "text": text}
            for text in texts]


def score_token_ids(template: RerankTemplate, tokenizer) -> list[int]:
    """The ids of the score's tokens, looked up as the reference looks them up."""
    ids = []
    for token in template.score_tokens:
        if template.token_lookup == "vocab":
            found = tokenizer.convert_tokens_to_ids(token)
            if found is None or found == tokenizer.unk_token_id:
                raise ValueError(f"the score token {token!r} is not in the tokenizer's vocabulary")
        else:
            encoded = tokenizer(token, add_special_tokens=False)["input_ids"]
            if not encoded:
                raise ValueError(f"the score token {token!r} encodes to no ids")
            found = encoded[0]
        ids.append(int(found))
    return ids


def manifest_blocks(name: str, tokenizer, max_length: int, directory_name: str = "",
                    layer: int | None = None) -> tuple[dict, dict]:
    """The manifest's ``template`` and ``score`` blocks of template ``name`` with ``tokenizer``'s
    ids, for a checkpoint in a directory called ``directory_name``; ``layer`` is the cutoff layer
    whose score head a layer_head rule reads."""
    t = TEMPLATES[name]
    prefix = _fixed(t.prefix, tokenizer)
    if t.bos:
        prefix.insert(0, {"ids": [int(tokenizer.bos_token_id)], "text": str(tokenizer.bos_token)})
    template = {
        "name": name,
        "reference": t.reference,
        "truncation": t.truncation,
        "max_length": max_length,
        "prefix": prefix,
        "query": [{"text": t.query}],
        "separator": _fixed(t.separator, tokenizer),
        "passage": [{"text": t.passage}],
        "suffix": _fixed(t.suffix, tokenizer),
        "instruction": {"format": t.instruction_format, "default": t.default_instruction},
    }
    score = {"rule": t.score_rule, "tokens": list(t.score_tokens),
             "token_ids": score_token_ids(t, tokenizer),
             "normalize_shift": dict(t.normalize_shift_by_name).get(directory_name,
                                                                    t.normalize_shift)}
    if t.score_rule == "layer_head":
        if layer is None:
            raise ValueError(f"the {name} template reads a layer's score head: say which layer")
        score["layer"] = int(layer)
    return template, score
