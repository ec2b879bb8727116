// Writes output records as JSONL into "<path>.partial", renamed to <path> once the job is done,
// so that a file at the output path is always complete. A resumed job reopens the partial file
// where its last checkpoint ended and writes on from there.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "engine/io/records.h"

namespace engine {

class JsonlWriter {
 public:
  // Starts "<path>.partial" afresh, or, when `resume_at` > 0, keeps its first `resume_at` bytes
  // (what a checkpoint recorded) and drops whatever was written after them. Throws ConfigError
  // when the partial file is shorter than that: then it is not the file the checkpoint describes.
  explicit JsonlWriter(const std::string& path, int64_t resume_at = 0);
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;

  void write(const OutputRecord& record);
  // Flushes and syncs what was written, so that a checkpoint naming bytes_written() is true
  // after a crash.
  void sync();
  int64_t bytes_written() const { return bytes_; }
  // Flushes, syncs and renames the partial file to the output path.
  void commit();

  static std::string partial_path(const std::string& path) { return path + ".partial"; }

 private:
  std::string path_;
  std::string partial_path_;
  std::FILE* file_ = nullptr;
  int64_t bytes_ = 0;
};

}  // namespace engine
