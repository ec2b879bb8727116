#include "engine/text/hf_added_tokens.h"

#include <algorithm>

#include "engine/text/hf_unicode.h"

namespace engine::hf {
namespace {

constexpr size_t kNone = static_cast<size_t>(-1);

// The code point that ends just before byte `end` of valid UTF-8 `text`.
char32_t code_before(std::string_view text, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return decode_at(text, start);
}

// Where the whitespace (the regex crate's \s) that ends `text` at `end` begins.
size_t whitespace_run_start(std::string_view text, size_t end) {
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    if (!is_whitespace(decode_at(text, start))) break;
    end = start;
  }
  return end;
}

size_t whitespace_run_end(std::string_view text, size_t start) {
  while (start < text.size() && is_whitespace(decode_at(text, start))) {
    start += utf8_length(static_cast<unsigned char>(text[start]));
  }
  return start;
}

}  // namespace

void AddedVocabulary::Matcher::add(std::string_view pattern, size_t token) {
  if (pattern.empty()) return;
  size_t node = 0;
  for (char c : pattern) {
    const auto byte = static_cast<unsigned char>(c);
    auto& children = nodes_[node].children;
    auto found = std::find_if(children.begin(), children.end(),
                              [byte](const auto& child) { return child.first == byte; });
    if (found == children.end()) {
      children.emplace_back(byte, nodes_.size());
      node = nodes_.size();
      nodes_.emplace_back();
    } else {
      node = found->second;
    }
  }
  // The same string twice: the first token keeps it (Aho-Corasick reports the first pattern).
  if (nodes_[node].token == kNone) nodes_[node].token = token;
  first_bytes_[static_cast<unsigned char>(pattern[0])] = true;
}

AddedVocabulary::Matcher::Match AddedVocabulary::Matcher::find(std::string_view text,
                                                               size_t from) const {
  for (size_t start = from; start < text.size(); ++start) {
    if (!first_bytes_[static_cast<unsigned char>(text[start])]) continue;
    size_t node = 0, best_end = kNone, best_token = kNone;
    for (size_t i = start; i < text.size(); ++i) {
      const auto byte = static_cast<unsigned char>(text[i]);
      const auto& children = nodes_[node].children;
      const auto found = std::find_if(children.begin(), children.end(),
                                      [byte](const auto& child) { return child.first == byte; });
      if (found == children.end()) break;
      node = found->second;
      if (nodes_[node].token != kNone) {
        best_end = i + 1;
        best_token = nodes_[node].token;
      }
    }
    if (best_token != kNone) return {start, best_end, best_token};
  }
  return {kNone, kNone, kNone};
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer,
                                 bool encode_special_tokens)
    : tokens_(std::move(tokens)),
      normalizer_(normalizer),
      encode_special_tokens_(encode_special_tokens) {
  // tokenizers lists the special tokens first, then the others, each in the order given.
  std::vector<size_t> order(tokens_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_partition(order.begin(), order.end(),
                        [this](size_t i) { return tokens_[i].special; });
  for (size_t i : order) {
    const AddedToken& token = tokens_[i];
    if (!token.normalized) {
      raw_.add(token.content, i);
      continue;
    }
    std::string content = token.content;
    if (normalizer_) normalizer_->normalize(content);
    normalized_.add(content, i);
  }
}

void AddedVocabulary::split(std::string_view text, bool at_start, const Matcher& matcher,
                            bool normalize, std::vector<TextPiece>& out) const {
  auto push_text = [&](size_t start, size_t end) {
    if (start >= end) return;
    TextPiece piece{std::string(text.substr(start, end - start)), -1, at_start && start == 0};
    if (normalize && normalizer_) normalizer_->normalize(piece.text);
    if (normalize) {
      if (!piece.text.empty()) split(piece.text, piece.at_start, normalized_, false, out);
    } else {
      out.push_back(std::move(piece));
    }
  };
  size_t done = 0;  // end of what is already in `out`
  for (size_t from = 0; !matcher.empty() && from < text.size();) {
    const Matcher::Match match = matcher.find(text, from);
    if (match.start == kNone) break;
    from = match.end;
    const AddedToken& token = tokens_[match.token];
    if (encode_special_tokens_ && token.special) continue;
    if (token.single_word) {
      const bool word_before = match.start > 0 && is_word_character(code_before(text, match.start));
      const bool word_after =
          match.end < text.size() && is_word_character(decode_at(text, match.end));
      if (word_before || word_after) continue;
    }
    size_t start = match.start, stop = match.end;
    if (token.lstrip) start = std::max(whitespace_run_start(text, start), done);
    if (token.rstrip) stop = whitespace_run_end(text, stop);
    push_text(done, start);
    out.push_back({std::string(), token.id, false});
    done = stop;
  }
  push_text(done, text.size());
}

std::vector<TextPiece> AddedVocabulary::extract_and_normalize(std::string_view text) const {
  std::vector<TextPiece> pieces;
  split(text, true, raw_, true, pieces);
  return pieces;
}

}  // namespace engine::hf
