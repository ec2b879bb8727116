#include "engine/io/jsonl_reader.h"

#include <cerrno>
#include <cstring>

#include "engine/common/error.h"

namespace engine {

JsonlReader::JsonlReader(const std::string& path, int64_t max_line_bytes)
    : file_(std::fopen(path.c_str(), "rb")), max_line_bytes_(max_line_bytes) {
  check<ConfigError>(file_ != nullptr, "cannot open input '{}': {}", path, std::strerror(errno));
}

JsonlReader::JsonlReader(const std::string& path, int64_t max_line_bytes, const InputRange& range)
    : JsonlReader(path, max_line_bytes) {
  check<ConfigError>(fseeko(file_, range.begin, SEEK_SET) == 0, "cannot seek to byte {} of '{}': {}",
                     range.begin, path, std::strerror(errno));
  offset_ = range.begin;
  end_ = range.end;
  line_number_ = range.first_line - 1;
}

JsonlReader::~JsonlReader() {
  if (file_) std::fclose(file_);
}

bool JsonlReader::next(InputLine& line) {
  line.text.clear();
  line.too_long = false;
  line.bytes = 0;
  if (end_ >= 0 && offset_ >= end_) return false;
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
  offset_ += line.bytes + (c == '\n' ? 1 : 0);
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

}  // namespace engine
