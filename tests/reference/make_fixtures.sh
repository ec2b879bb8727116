#!/usr/bin/env bash
# Makes the test fixtures in $ENGINE_TEST_FIXTURES, else $1 (default build/test_fixtures): a tiny random-weight XLM-R
# reranker bundle with a sentencepiece model trained on the spot, and what the reference Python
# tools (transformers' tokenizers, FlagEmbedding's FlagReranker) compute on it.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${ENGINE_TEST_FIXTURES:-${1:-build/test_fixtures}}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
export PYTHONHASHSEED=0 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

$PY tools/export.py --family cross_encoder --tiny --out "$OUT/xlmr_tiny"
$PY tests/reference/make_pairs.py --out "$OUT/pairs.jsonl"
$PY tests/reference/xlmr_tokenizer_reference.py --checkpoint "$OUT/xlmr_tiny/checkpoint" \
  --out "$OUT/xlmr_tokenizer_reference.json"
for length in 512 64; do
  $PY tests/reference/flag_reranker_reference.py --checkpoint "$OUT/xlmr_tiny/checkpoint" \
    --pairs "$OUT/pairs.jsonl" --max-length "$length" --out "$OUT/flag_reranker_$length.json"
done
# Instructions as FlagReranker applies them (query_instruction_for_rerank and its format).
$PY tests/reference/flag_reranker_reference.py --checkpoint "$OUT/xlmr_tiny/checkpoint" \
  --pairs "$OUT/pairs.jsonl" --max-length 128 --out "$OUT/flag_reranker_instructions.json" \
  --query-instruction "Find the passage that answers: " --query-instruction-format "{}{}" \
  --passage-instruction "passage" --passage-instruction-format "[{}]\\n{}"
# Long passages scored in overlapping chunks, as BCEmbedding's RerankerModel.rerank does it.
$PY tests/reference/bce_reranker_reference.py --checkpoint "$OUT/xlmr_tiny/checkpoint" \
  --records "$OUT/bce_records.jsonl" --out "$OUT/bce_reranker_256.json" --max-length 256
# BGE-M3: dense, lexical and ColBERT outputs and compute_score of FlagEmbedding's BGEM3FlagModel.
$PY tools/export.py --family bge_m3 --tiny --out "$OUT/m3_tiny"
$PY tests/reference/bge_m3_reference.py --checkpoint "$OUT/m3_tiny/checkpoint" \
  --out "$OUT/bge_m3_reference.json" --max-length 512
# StructBERT (ModelScope layout) as cross-encoder and bi-encoder, WordPiece against BertTokenizer.
$PY tools/export.py --family structbert --tiny --out "$OUT/sbert_tiny"
$PY tools/export.py --family structbert --checkpoint "$OUT/sbert_tiny/checkpoint" \
  --kind bi_encoder --out "$OUT/sbert_tiny_bi"
$PY tests/reference/make_chinese_pairs.py --out "$OUT/chinese_pairs.jsonl"
$PY tests/reference/wordpiece_reference.py --vocab "$OUT/sbert_tiny/checkpoint/vocab.txt" \
  --out "$OUT/wordpiece_reference.json"
$PY tests/reference/structbert_reference.py --checkpoint "$OUT/sbert_tiny/checkpoint" \
  --pairs "$OUT/chinese_pairs.jsonl" --out "$OUT/structbert_128.json" --max-length 128
# LLM reranker (tiny Gemma): FlagLLMReranker's input ids and 'Yes' scores, Gemma tokenization.
$PY tools/export.py --family llm_reranker --tiny --out "$OUT/llm_tiny"
$PY tests/reference/llm_reranker_reference.py --checkpoint "$OUT/llm_tiny/checkpoint" \
  --out "$OUT/llm_reranker_256.json" --max-length 256
# The LLM rerankers of the qwen3 and qwen2 layouts (Qwen3-Reranker, mxbai-rerank-v2): tiny random
# *ForCausalLM checkpoints with byte-level BPE tokenizer.json files trained on the spot, exported
# a second time without --family (the template from config.json's model_type), and in bf16; the
# references are the Qwen3-Reranker model card's code and mxbai-rerank's MxbaiRerankV2.
for reranker in qwen3_reranker:qwen3:qwen3-reranker mxbai_rerank:qwen2:mxbai-rerank-v2; do
  IFS=: read -r name architecture template <<< "$reranker"
  $PY tools/export.py --family llm_reranker --tiny --tiny-option architecture="$architecture" \
    --out "$OUT/${name}_tiny"
  $PY tools/export.py --checkpoint "$OUT/${name}_tiny/checkpoint" --out "$OUT/${name}_tiny"
  $PY tools/export.py --checkpoint "$OUT/${name}_tiny/checkpoint" --out "$OUT/${name}_tiny_bf16" \
    --dtype bf16
  $PY tests/reference/decoder_reranker_reference.py --reranker "$template" \
    --checkpoint "$OUT/${name}_tiny/checkpoint" --out "$OUT/${name}_256.json" --max-length 256
done
# Long context: a tiny Qwen3-Reranker with Qwen3's 32k positions, exported at max_length 32768,
# and rerank records with a passage of 16k tokens next to short ones (memory_limit_test.cc).
$PY tools/export.py --family llm_reranker --tiny --tiny-option architecture=qwen3 \
  --tiny-option max_positions=32768 --max-length 32768 --out "$OUT/qwen3_reranker_32k_tiny"
$PY tests/reference/make_long_records.py --checkpoint "$OUT/qwen3_reranker_32k_tiny/checkpoint" \
  --out "$OUT/long_context_records.jsonl" --tokens 16000
# bge-reranker-v2-minicpm-layerwise: a tiny random LayerWiseMiniCPMForCausalLM (FlagEmbedding's
# class; 4 layers, score heads from layer 1) with a Llama SentencePiece tokenizer.json, exported
# at cutoff layer 3 (only 3 layers run) from the directory as published (no --family), in fp32
# and bf16; the reference is FlagEmbedding's LayerWiseFlagLLMReranker with cutoff_layers=[3].
$PY tools/export.py --family llm_reranker --tiny --tiny-option architecture=minicpm \
  --tiny-option layers=4 --out "$OUT/minicpm_layerwise_tiny" --cutoff-layer 3
$PY tools/export.py --checkpoint "$OUT/minicpm_layerwise_tiny/checkpoint" \
  --out "$OUT/minicpm_layerwise_tiny_bf16" --cutoff-layer 3 --dtype bf16
$PY tests/reference/decoder_reranker_reference.py --reranker bge-reranker-v2-minicpm-layerwise \
  --checkpoint "$OUT/minicpm_layerwise_tiny/checkpoint" --cutoff-layer 3 \
  --out "$OUT/minicpm_layerwise_256.json" --max-length 256
# tokenizer.json of every model type, trained on the spot with tokenizers' own trainers or converted
# by transformers, and tokenizers' ids on a multilingual set (tests/unit/tokenizer_json_test.cc).
$PY tests/reference/tokenizer_json_reference.py --out "$OUT/tokenizer_json"
# Published embedder directories (sentence-transformers layout), made by sentence-transformers
# itself: BERT with CLS pooling, Dense, Normalize and prompts, through tokenizer.json, exported a
# second time without --family (the family from modules.json); and BERT with mean pooling and only
# vocab.txt. SentenceTransformer.encode and .similarity on each are the references.
$PY tools/export.py --family embedder --tiny --out "$OUT/st_bert_tiny"
$PY tools/export.py --checkpoint "$OUT/st_bert_tiny/checkpoint" --out "$OUT/st_bert_tiny"
$PY tests/reference/embedder_reference.py --checkpoint "$OUT/st_bert_tiny/checkpoint" \
  --out "$OUT/embedder_st_bert.json" --max-length 128
$PY tools/export.py --family embedder --tiny --seed 1 --tiny-option pooling=mean \
  --tiny-option dense=0 --tiny-option tokenizer_json=false --out "$OUT/st_bert_vocab_tiny"
$PY tests/reference/embedder_reference.py --checkpoint "$OUT/st_bert_vocab_tiny/checkpoint" \
  --out "$OUT/embedder_st_bert_vocab.json" --max-length 128
# ModernBERT (mean pooling, local and global attention layers), Qwen3-Embedding and gte-Qwen2
# (decoders, last-token pooling, a query instruction) laid out the same way, with byte-level BPE
# tokenizer.json files trained on the spot; and multilingual-e5 (XLM-R, mean pooling, a unigram
# SentencePiece converted to tokenizer.json by transformers).
for architecture in modernbert qwen3 qwen2 xlm-roberta; do
  $PY tools/export.py --family embedder --tiny --tiny-option architecture=$architecture \
    --out "$OUT/st_${architecture}_tiny"
  $PY tests/reference/embedder_reference.py --checkpoint "$OUT/st_${architecture}_tiny/checkpoint" \
    --out "$OUT/embedder_st_${architecture}.json" --max-length 128
done
# multilingual-e5 again as sentence-transformers 2.x-4.x saved a lower-casing model: do_lower_case in
# sentence_bert_config.json over a cased tokenizer (the bundle's tokenizer.json lower-cases first).
$PY tools/export.py --family embedder --tiny --seed 2 --tiny-option architecture=xlm-roberta \
  --tiny-option do_lower_case=true --out "$OUT/st_xlm-roberta_lower_tiny"
$PY tests/reference/embedder_reference.py --checkpoint "$OUT/st_xlm-roberta_lower_tiny/checkpoint" \
  --out "$OUT/embedder_st_xlm-roberta_lower.json" --max-length 128
# CrossEncoder directories (BERT, ModernBERT; tokenizer.json), saved by sentence-transformers'
# CrossEncoder itself and exported again without --family; CrossEncoder.predict as reference.
for architecture in bert modernbert; do
  $PY tools/export.py --family cross_encoder --tiny --tiny-option architecture=$architecture \
    --out "$OUT/ce_${architecture}_tiny"
  $PY tools/export.py --checkpoint "$OUT/ce_${architecture}_tiny/checkpoint" \
    --out "$OUT/ce_${architecture}_tiny"
  $PY tests/reference/cross_encoder_reference.py --checkpoint "$OUT/ce_${architecture}_tiny/checkpoint" \
    --pairs "$OUT/pairs.jsonl" --out "$OUT/cross_encoder_${architecture}.json" --max-length 128
done
# BGE-M3 and the LLM reranker traced in bf16 (tools/export.py --dtype: graph_dtype bfloat16).
$PY tools/export.py --family bge_m3 --checkpoint "$OUT/m3_tiny/checkpoint" \
  --out "$OUT/m3_tiny_bf16" --dtype bf16
$PY tools/export.py --family llm_reranker --checkpoint "$OUT/llm_tiny/checkpoint" \
  --out "$OUT/llm_tiny_bf16" --dtype bf16
# The same reranker traced in bf16, for lean loading.
$PY tools/export.py --family cross_encoder --checkpoint "$OUT/xlmr_tiny/checkpoint" \
  --out "$OUT/xlmr_tiny_bf16" --dtype bf16
# The same reranker with its embedding table stored apart in int8 (mapped by the engine).
$PY tools/export.py --family cross_encoder --checkpoint "$OUT/xlmr_tiny/checkpoint" \
  --out "$OUT/xlmr_tiny_int8" --embedding-dtype int8
# The same reranker as an AOTInductor package compiled for this CPU (model_format aoti).
$PY tools/export.py --family cross_encoder --checkpoint "$OUT/xlmr_tiny/checkpoint" \
  --out "$OUT/xlmr_tiny_aoti" --format aoti
# Every fixture manifest, as exported and broken in each way, with the jsonschema package's verdict
# on each against models/common/manifest.schema.json (the engine's validator must agree).
$PY tests/reference/manifest_schema_cases.py --out "$OUT/manifest_schema_cases.json" --bundles \
  "$OUT"/xlmr_tiny "$OUT"/xlmr_tiny_int8 "$OUT"/xlmr_tiny_bf16 "$OUT"/m3_tiny "$OUT"/m3_tiny_bf16 \
  "$OUT"/sbert_tiny "$OUT"/sbert_tiny_bi "$OUT"/llm_tiny "$OUT"/llm_tiny_bf16 "$OUT"/xlmr_tiny_aoti \
  "$OUT"/qwen3_reranker_tiny "$OUT"/qwen3_reranker_tiny_bf16 "$OUT"/mxbai_rerank_tiny \
  "$OUT"/mxbai_rerank_tiny_bf16 "$OUT"/minicpm_layerwise_tiny "$OUT"/minicpm_layerwise_tiny_bf16 \
  "$OUT"/st_bert_tiny "$OUT"/st_bert_vocab_tiny "$OUT"/st_modernbert_tiny "$OUT"/st_qwen3_tiny \
  "$OUT"/st_qwen2_tiny "$OUT"/st_xlm-roberta_tiny "$OUT"/st_xlm-roberta_lower_tiny \
  "$OUT"/ce_bert_tiny "$OUT"/ce_modernbert_tiny
