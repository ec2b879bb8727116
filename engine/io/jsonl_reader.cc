#include "engine/io/jsonl_reader.h"

#include <cerrno>
#include <cstring>

#include "engine/common/error.h"

namespace engine {

JsonlReader::JsonlReader(const std::string& path, int64_t max_line_bytes)
    : file_(std::fopen(path.c_str(), "rb")), max_line_bytes_(max_line_bytes) {
  check<ConfigError>(file_ != nullptr, "cannot open input '{}': {}", path, std::strerror(errno));
}

JsonlReader::~JsonlReader() {
  if (file_) std::fclose(file_);
}

bool JsonlReader::next(InputLine& line) {
  line.text.clear();
  line.too_long = false;
  line.bytes = 0;
  int c = getc_unlocked(file_);
  if (c == EOF) return false;
  for (; c != EOF && c != '\n'; c = getc_unlocked(file_)) {
    ++line.bytes;
    if (line.bytes > max_line_bytes_) {
      line.too_long = true;
      line.text.clear();
      line.text.shrink_to_fit();
    }
    if (!line.too_long) line.text.push_back(static_cast<char>(c));
  }
  if (!line.text.empty() && line.text.back() == '\r') line.text.pop_back();
  line.number = ++line_number_;
  return true;
}

int64_t count_lines(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) return 0;
  int64_t lines = 0;
  char buffer[1 << 16];
  size_t read = 0;
  char last = '\n';
  while ((read = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    for (size_t i = 0; i < read; ++i) lines += buffer[i] == '\n';
    last = buffer[read - 1];
  }
  std::fclose(file);
  return lines + (last != '\n');
}

size_t find_invalid_utf8(const std::string& text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const size_t size = text.size();
  size_t i = 0;
  while (i < size) {
    const unsigned char lead = bytes[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    size_t length = 0;
    unsigned char low = 0x80, high = 0xBF;  // range of the second byte
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      length = 3;
      if (lead == 0xE0) low = 0xA0;   // overlong
      if (lead == 0xED) high = 0x9F;  // surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      length = 4;
      if (lead == 0xF0) low = 0x90;   // overlong
      if (lead == 0xF4) high = 0x8F;  // past U+10FFFF
    } else {
      return i;
    }
    if (i + length > size) return i;
    if (bytes[i + 1] < low || bytes[i + 1] > high) return i;
    for (size_t k = 2; k < length; ++k) {
      if ((bytes[i + k] & 0xC0) != 0x80) return i;
    }
    i += length;
  }
  return std::string::npos;
}

}  // namespace engine
