// The vocabulary of a sentencepiece .model file (a serialized ModelProto), read directly from the
// protobuf wire format: every piece with its score and type, the model type and byte fallback.
// The engine runs the unigram search itself (unigram_encoder.h) and needs these fields, which the
// library's public API does not all expose.
#pragma once

#include <string>
#include <vector>

namespace engine {

struct SentencePieceVocabulary {
  enum class Type { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5,
                    kByte = 6 };
  enum class ModelType { kUnigram = 1, kBpe = 2, kWord = 3, kChar = 4 };

  struct Piece {
    std::string text;
    float score = 0;
    Type type = Type::kNormal;
  };

  std::vector<Piece> pieces;
  ModelType model_type = ModelType::kUnigram;
  bool byte_fallback = false;
};

// Parses the bytes of a .model file. Throws ConfigError naming `source` when they are not a
// sentencepiece model.
SentencePieceVocabulary parse_sentencepiece_vocabulary(const std::string& bytes,
                                                       const std::string& source);
SentencePieceVocabulary read_sentencepiece_vocabulary(const std::string& path);

}  // namespace engine
