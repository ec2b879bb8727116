// Reads a JSONL file line by line. A line longer than the limit is not kept in memory: it comes
// back marked too long, so that it can get an error record while the job goes on.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "engine/io/input_scan.h"

namespace engine {

struct InputLine {
  int64_t number = 0;  // 1-based
  std::string text;    // without the line break
  bool too_long = false;
  int64_t bytes = 0;   // the whole line's length, also when too long
};

class JsonlReader {
 public:
  JsonlReader(const std::string& path, int64_t max_line_bytes);
  // Only the lines of `range`, numbered from its first line.
  JsonlReader(const std::string& path, int64_t max_line_bytes, const InputRange& range);
  ~JsonlReader();
  JsonlReader(const JsonlReader&) = delete;
  JsonlReader& operator=(const JsonlReader&) = delete;

  // False at the end of the file. A final line without a line break is still a line.
  bool next(InputLine& line);

  // Where the next line starts: its byte offset in the file and its number.
  int64_t offset() const { return offset_; }
  int64_t next_line_number() const { return line_number_ + 1; }

 private:
  std::FILE* file_ = nullptr;
  int64_t max_line_bytes_;
  int64_t line_number_ = 0;
  int64_t offset_ = 0;
  int64_t end_ = -1;  // -1: the end of the file
};

// Number of lines next() will return for the file; used for progress and ETA.
int64_t count_lines(const std::string& path);

}  // namespace engine
