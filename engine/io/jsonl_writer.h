// Writes output records as JSONL into "<path>.partial", renamed to <path> once the job is done,
// so that a file at the output path is always complete.
#pragma once

#include <cstdio>
#include <string>

#include "engine/io/records.h"

namespace engine {

class JsonlWriter {
 public:
  explicit JsonlWriter(const std::string& path);
  ~JsonlWriter();
  JsonlWriter(const JsonlWriter&) = delete;
  JsonlWriter& operator=(const JsonlWriter&) = delete;

  void write(const OutputRecord& record);
  // Flushes, syncs and renames the partial file to the output path.
  void commit();

 private:
  std::string path_;
  std::string partial_path_;
  std::FILE* file_ = nullptr;
};

}  // namespace engine
