"""Decoder-only (LLM) rerankers scored by the logit of a 'Yes' token.

``export.py`` turns BAAI/bge-reranker-v2-gemma (GemmaForCausalLM, scored by
FlagEmbedding's FlagLLMReranker) or a tiny random Gemma checkpoint into an
engine bundle.
"""
