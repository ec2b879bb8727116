#include "engine/io/jsonl_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "engine/common/error.h"

namespace engine {

JsonlWriter::JsonlWriter(const std::string& path) : path_(path), partial_path_(path + ".partial") {
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code error;
  if (!parent.empty()) std::filesystem::create_directories(parent, error);
  file_ = std::fopen(partial_path_.c_str(), "wb");
  check<ConfigError>(file_ != nullptr, "cannot write output '{}': {}", partial_path_,
                     std::strerror(errno));
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
}

void JsonlWriter::commit() {
  const bool ok = std::fflush(file_) == 0 && fsync(fileno(file_)) == 0;
  std::fclose(file_);
  file_ = nullptr;
  check<std::runtime_error>(ok, "cannot flush '{}': {}", partial_path_, std::strerror(errno));
  std::filesystem::rename(partial_path_, path_);
}

}  // namespace engine
