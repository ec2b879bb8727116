// Segmentation of normalized text by a sentencepiece unigram model: the best path by total piece
// score, searched left to right one character at a time. The search, its tie-breaking (the first
// path found to an end position keeps it unless another scores strictly more) and its float
// arithmetic are those of sentencepiece 0.2.3's optimized encoder, which transformers' slow
// tokenizer runs and which the fast tokenizers agree with. Debian's libsentencepiece (0.1.97)
// uses an older search that breaks score ties the other way ("www" -> "ww w" instead of
// "w ww"), so the engine runs its own. See docs/tokenizers.md.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/text/sentencepiece_vocabulary.h"

namespace engine {

class UnigramEncoder {
 public:
  explicit UnigramEncoder(const SentencePieceVocabulary& vocabulary);

  // sentencepiece ids of `normalized` (the library's normalization already applied). Runs of
  // unknown characters give one unknown id, or their UTF-8 bytes when the model has byte
  // fallback.
  std::vector<int> encode(std::string_view normalized) const;

 private:
  struct Candidate {
    int id;
    bool user_defined;
  };

  void append_unknown(std::string_view surface, std::vector<int>& ids) const;

  std::unordered_map<std::string_view, Candidate> pieces_;  // views into vocabulary_ texts
  std::vector<float> scores_;
  std::vector<std::string> texts_;
  std::vector<int> byte_ids_;  // <0x00>..<0xFF>, when the model has byte fallback
  size_t max_piece_bytes_ = 0;
  float unknown_score_ = 0;
  int unknown_id_ = 0;
  bool byte_fallback_ = false;
};

}  // namespace engine
