#include "engine/text/unigram_encoder.h"

#include <algorithm>
#include <cfloat>

#include <fmt/format.h>

#include "engine/common/error.h"

namespace engine {
namespace {

using Type = SentencePieceVocabulary::Type;

// sentencepiece's penalty below the lowest piece score for an unknown character.
constexpr float kUnknownPenalty = 10.0f;
// Path scores are re-based past this magnitude, as sentencepiece does, to keep float precision.
constexpr float kScoreResetThreshold = 100000.0f;

// Bytes of the UTF-8 character that starts with `lead` (1 for a stray byte), as sentencepiece
// counts them.
size_t char_length(char lead) {
  return static_cast<size_t>("\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[(lead & 0xFF) >> 4]);
}

// User-defined symbols win over any segmentation of the same text.
float user_defined_score(size_t length) {
  return static_cast<float>(0.1 * (static_cast<double>(length) - 1));
}

struct BestPath {
  int id = -1;
  float score = 0;
  int64_t starts_at = -1;
};

}  // namespace

UnigramEncoder::UnigramEncoder(const SentencePieceVocabulary& vocabulary)
    : byte_fallback_(vocabulary.byte_fallback) {
  const size_t count = vocabulary.pieces.size();
  texts_.reserve(count);
  scores_.reserve(count);
  float min_score = FLT_MAX;
  byte_ids_.assign(256, -1);
  for (size_t id = 0; id < count; ++id) {
    const auto& piece = vocabulary.pieces[id];
    texts_.push_back(piece.text);
    scores_.push_back(piece.score);
    if (piece.type == Type::kNormal) min_score = std::min(min_score, piece.score);
    if (piece.type == Type::kUnknown) unknown_id_ = static_cast<int>(id);
    if (piece.type == Type::kByte && piece.text.size() == 6) {
      byte_ids_[std::stoi(piece.text.substr(3, 2), nullptr, 16)] = static_cast<int>(id);
    }
  }
  // texts_ no longer grows, so views into it stay valid.
  for (size_t id = 0; id < count; ++id) {
    const Type type = vocabulary.pieces[id].type;
    if (type != Type::kNormal && type != Type::kUserDefined) continue;  // unused never matches
    pieces_.emplace(texts_[id], Candidate{static_cast<int>(id), type == Type::kUserDefined});
    max_piece_bytes_ = std::max(max_piece_bytes_, texts_[id].size());
  }
  unknown_score_ = min_score - kUnknownPenalty;
  check<ConfigError>(!byte_fallback_ ||
                         std::find(byte_ids_.begin(), byte_ids_.end(), -1) == byte_ids_.end(),
                     "the sentencepiece model has byte fallback but lacks some <0xXX> pieces");
}

std::vector<int> UnigramEncoder::encode(std::string_view text) const {
  const size_t size = text.size();
  std::vector<BestPath> best(size + 1);
  size_t frontier = 0;
  for (size_t start = 0; start < size;) {
    float score_here = best[start].score;
    if (score_here < -kScoreResetThreshold || score_here > kScoreResetThreshold) {
      const float offset = score_here;
      for (size_t i = start; i <= frontier; ++i) {
        if (i == start || best[i].starts_at != -1) best[i].score -= offset;
      }
      score_here = 0.0f;
    }
    const size_t step = std::min(char_length(text[start]), size - start);
    bool single_char_piece = false;
    const size_t longest = std::min(max_piece_bytes_, size - start);
    for (size_t length = 1; length <= longest; ++length) {
      auto found = pieces_.find(text.substr(start, length));
      if (found == pieces_.end()) continue;
      const Candidate& candidate = found->second;
      const size_t end = start + length;
      frontier = std::max(frontier, end);
      const float piece_score =
          candidate.user_defined ? user_defined_score(length) : scores_[candidate.id];
      const float path_score = piece_score + score_here;
      if (best[end].starts_at == -1 || path_score > best[end].score) {
        best[end] = {candidate.id, path_score, static_cast<int64_t>(start)};
      }
      if (length == step) single_char_piece = true;
    }
    if (!single_char_piece) {
      const size_t end = start + step;
      frontier = std::max(frontier, end);
      const float path_score = unknown_score_ + score_here;
      if (best[end].starts_at == -1 || path_score > best[end].score) {
        best[end] = {unknown_id_, path_score, static_cast<int64_t>(start)};
      }
    }
    start += step;
  }

  std::vector<std::pair<size_t, size_t>> spans;  // (start, end) of each piece, last first
  for (size_t end = size; end > 0; end = static_cast<size_t>(best[end].starts_at)) {
    spans.emplace_back(static_cast<size_t>(best[end].starts_at), end);
  }
  std::vector<int> ids;
  ids.reserve(spans.size());
  bool previous_unknown = false;
  for (auto span = spans.rbegin(); span != spans.rend(); ++span) {
    const int id = best[span->second].id;
    const bool unknown = id == unknown_id_;
    if (unknown) {
      append_unknown(text.substr(span->first, span->second - span->first), ids);
    } else {
      ids.push_back(id);
    }
    // A run of unknown characters is one unknown piece (without byte fallback).
    if (unknown && previous_unknown && !byte_fallback_) ids.pop_back();
    previous_unknown = unknown;
  }
  return ids;
}

void UnigramEncoder::append_unknown(std::string_view surface, std::vector<int>& ids) const {
  if (!byte_fallback_) {
    ids.push_back(unknown_id_);
    return;
  }
  for (char byte : surface) ids.push_back(byte_ids_[static_cast<unsigned char>(byte)]);
}

}  // namespace engine
