#include "engine/io/jsonl_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "engine/common/error.h"

namespace engine {

JsonlWriter::JsonlWriter(const std::string& path, int64_t resume_at)
    : path_(path), partial_path_(partial_path(path)) {
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code error;
  if (!parent.empty()) std::filesystem::create_directories(parent, error);
  if (resume_at <= 0) {
    file_ = std::fopen(partial_path_.c_str(), "wb");
    check<ConfigError>(file_ != nullptr, "cannot write output '{}': {}", partial_path_,
                       std::strerror(errno));
    return;
  }
  const auto size = std::filesystem::file_size(partial_path_, error);
  check<ConfigError>(!error && static_cast<int64_t>(size) >= resume_at,
                     "cannot resume: '{}' {} but its checkpoint says {} bytes were written; "
                     "delete the checkpoint to start over",
                     partial_path_,
                     error ? "is missing" : fmt::format("holds {} bytes", size), resume_at);
  file_ = std::fopen(partial_path_.c_str(), "r+b");
  check<ConfigError>(file_ != nullptr, "cannot reopen output '{}': {}", partial_path_,
                     std::strerror(errno));
  const bool ok = ftruncate(fileno(file_), resume_at) == 0 && fseeko(file_, resume_at, SEEK_SET) == 0;
  check<ConfigError>(ok, "cannot cut '{}' back to {} bytes: {}", partial_path_, resume_at,
                     std::strerror(errno));
  bytes_ = resume_at;
}

JsonlWriter::~JsonlWriter() {
  if (file_) std::fclose(file_);
}

void JsonlWriter::write(const OutputRecord& record) {
  // Strict: every string written came from validated UTF-8, so a failure here is a bug.
  const std::string line = record.dump(-1, ' ', false, OutputRecord::error_handler_t::strict);
  const bool ok = std::fwrite(line.data(), 1, line.size(), file_) == line.size() &&
                  std::fputc('\n', file_) != EOF;
  check<std::runtime_error>(ok, "cannot write to '{}': {}", partial_path_, std::strerror(errno));
  bytes_ += static_cast<int64_t>(line.size()) + 1;
}

void JsonlWriter::sync() {
  const bool ok = std::fflush(file_) == 0 && fsync(fileno(file_)) == 0;
  check<std::runtime_error>(ok, "cannot flush '{}': {}", partial_path_, std::strerror(errno));
}

void JsonlWriter::commit() {
  sync();
  std::fclose(file_);
  file_ = nullptr;
  std::filesystem::rename(partial_path_, path_);
}

}  // namespace engine
