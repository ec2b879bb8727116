// Reads a JSONL file line by line. A line longer than the limit is not kept in memory: it comes
// back marked too long, so that it can get an error record while the job goes on.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

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
  ~JsonlReader();
  JsonlReader(const JsonlReader&) = delete;
  JsonlReader& operator=(const JsonlReader&) = delete;

  // False at the end of the file. A final line without a line break is still a line.
  bool next(InputLine& line);

 private:
  std::FILE* file_ = nullptr;
  int64_t max_line_bytes_;
  int64_t line_number_ = 0;
};

// Number of lines next() will return for the file; used for progress and ETA.
int64_t count_lines(const std::string& path);

}  // namespace engine
