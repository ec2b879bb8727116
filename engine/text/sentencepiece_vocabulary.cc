#include "engine/text/sentencepiece_vocabulary.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

#include "engine/common/error.h"

namespace engine {
namespace {

// Field numbers of sentencepiece_model.proto.
constexpr uint32_t kModelPieces = 1;
constexpr uint32_t kModelTrainerSpec = 2;
constexpr uint32_t kPieceText = 1;
constexpr uint32_t kPieceScore = 2;
constexpr uint32_t kPieceType = 3;
constexpr uint32_t kTrainerModelType = 3;
constexpr uint32_t kTrainerByteFallback = 35;

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// A cursor over one protobuf message.
class WireReader {
 public:
  WireReader(const char* begin, const char* end, const std::string& source)
      : position_(begin), end_(end), source_(source) {}

  bool done() const { return position_ >= end_; }

  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      require(1);
      const auto byte = static_cast<uint8_t>(*position_++);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return value;
    }
    fail("a varint is longer than 10 bytes");
  }

  // The next field's number and wire type.
  std::pair<uint32_t, uint32_t> key() {
    const uint64_t key = varint();
    return {static_cast<uint32_t>(key >> 3), static_cast<uint32_t>(key & 7)};
  }

  WireReader message() {
    const uint64_t length = varint();
    require(length);
    WireReader inner(position_, position_ + length, source_);
    position_ += length;
    return inner;
  }

  std::string bytes() {
    WireReader inner = message();
    return std::string(inner.position_, inner.end_);
  }

  float fixed32_float() {
    require(4);
    float value = 0;
    std::memcpy(&value, position_, 4);  // little-endian, as on every platform LibTorch runs on
    position_ += 4;
    return value;
  }

  void skip(uint32_t wire_type) {
    switch (wire_type) {
      case kVarint: varint(); return;
      case kFixed64: require(8); position_ += 8; return;
      case kLengthDelimited: message(); return;
      case kFixed32: require(4); position_ += 4; return;
      default: fail("unknown wire type " + std::to_string(wire_type));
    }
  }

 private:
  void require(uint64_t bytes) const {
    if (static_cast<uint64_t>(end_ - position_) < bytes) fail("the data ends in the middle of a field");
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw ConfigError(source_ + " is not a sentencepiece model: " + what);
  }

  const char* position_;
  const char* end_;
  const std::string& source_;
};

SentencePieceVocabulary::Piece read_piece(WireReader reader) {
  SentencePieceVocabulary::Piece piece;
  while (!reader.done()) {
    const auto [field, wire_type] = reader.key();
    if (field == kPieceText && wire_type == kLengthDelimited) {
      piece.text = reader.bytes();
    } else if (field == kPieceScore && wire_type == kFixed32) {
      piece.score = reader.fixed32_float();
    } else if (field == kPieceType && wire_type == kVarint) {
      piece.type = static_cast<SentencePieceVocabulary::Type>(reader.varint());
    } else {
      reader.skip(wire_type);
    }
  }
  return piece;
}

void read_trainer_spec(WireReader reader, SentencePieceVocabulary& vocabulary) {
  while (!reader.done()) {
    const auto [field, wire_type] = reader.key();
    if (field == kTrainerModelType && wire_type == kVarint) {
      vocabulary.model_type = static_cast<SentencePieceVocabulary::ModelType>(reader.varint());
    } else if (field == kTrainerByteFallback && wire_type == kVarint) {
      vocabulary.byte_fallback = reader.varint() != 0;
    } else {
      reader.skip(wire_type);
    }
  }
}

}  // namespace

SentencePieceVocabulary parse_sentencepiece_vocabulary(const std::string& bytes,
                                                       const std::string& source) {
  SentencePieceVocabulary vocabulary;
  WireReader reader(bytes.data(), bytes.data() + bytes.size(), source);
  while (!reader.done()) {
    const auto [field, wire_type] = reader.key();
    if (field == kModelPieces && wire_type == kLengthDelimited) {
      vocabulary.pieces.push_back(read_piece(reader.message()));
    } else if (field == kModelTrainerSpec && wire_type == kLengthDelimited) {
      read_trainer_spec(reader.message(), vocabulary);
    } else {
      reader.skip(wire_type);
    }
  }
  check<ConfigError>(!vocabulary.pieces.empty(), "{} is not a sentencepiece model: no pieces",
                     source);
  return vocabulary;
}

SentencePieceVocabulary read_sentencepiece_vocabulary(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  check<ConfigError>(stream.good(), "sentencepiece model '{}' cannot be read", path);
  std::stringstream bytes;
  bytes << stream.rdbuf();
  return parse_sentencepiece_vocabulary(bytes.str(), path);
}

}  // namespace engine
