// Unicode for the tokenizer.json reader: UTF-8 to code points and back, tokenizers' character
// classes (hf_unicode_tables.h), its lower case, its normalization forms and grapheme clusters.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace engine::hf {

// Code points of valid UTF-8 `text`.
std::u32string decode_utf8(std::string_view text);
void append_utf8(char32_t code, std::string& out);
std::string encode_utf8(std::u32string_view text);
// Bytes of the character that starts with `lead`.
size_t utf8_length(unsigned char lead);
// The code point that starts at byte `at` of valid UTF-8 `text`.
char32_t decode_at(std::string_view text, size_t at);
// `text` with every ill-formed sequence replaced by U+FFFD, as Python decodes with "replace".
std::string sanitize_utf8(std::string_view text);

// Rust's char::is_whitespace (the White_Space property).
bool is_whitespace(char32_t code);
// BertNormalizer's clean_text: dropped characters and those that become a space.
bool is_bert_removed(char32_t code);
bool is_bert_whitespace(char32_t code);
bool is_bert_punctuation(char32_t code);
bool is_chinese_character(char32_t code);
bool is_numeric(char32_t code);
bool is_word_character(char32_t code);
bool is_combining_mark(char32_t code);
bool is_nonspacing_mark(char32_t code);

// Rust's char::to_lowercase of every character on its own (no final-sigma rule).
void append_lowercase(char32_t code, std::u32string& out);

enum class NormalForm { kNfc, kNfd, kNfkc, kNfkd };
// Decomposition follows tokenizers' tables (a character it cannot decompose is kept), the
// canonical order and composition are utf8proc's.
std::u32string normalize(std::u32string_view text, NormalForm form);

// Byte offsets where the extended grapheme clusters of valid UTF-8 `text` end.
std::vector<size_t> grapheme_ends(std::string_view text);

}  // namespace engine::hf
