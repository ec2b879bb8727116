#include "engine/io/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/common/error.h"

namespace engine {
namespace {

constexpr int kCheckpointFormat = 1;

void sync_folder(const std::filesystem::path& folder) {
  const int fd = ::open(folder.empty() ? "." : folder.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

nlohmann::json range_json(const InputRange& range) {
  return {{"first_line", range.first_line},
          {"lines", range.lines},
          {"begin", range.begin},
          {"end", range.end}};
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& text) {
  // A name of this process's own: ranks of one job may write the same file at the same time.
  const std::string pending = fmt::format("{}.writing.{}", path, ::getpid());
  const int fd = ::open(pending.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  check<std::runtime_error>(fd >= 0, "cannot write '{}': {}", pending, std::strerror(errno));
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = errno;
      ::close(fd);
      throw std::runtime_error(fmt::format("cannot write '{}': {}", pending, std::strerror(error)));
    }
    written += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  check<std::runtime_error>(synced, "cannot sync '{}': {}", pending, std::strerror(errno));
  std::filesystem::rename(pending, path);
  sync_folder(std::filesystem::path(path).parent_path());
}

void write_checkpoint(const std::string& path, const Checkpoint& checkpoint) {
  const nlohmann::json json = {
      {"checkpoint_format", kCheckpointFormat},    {"identity", checkpoint.identity},
      {"numerics", checkpoint.numerics},           {"range", range_json(checkpoint.range)},
      {"next_line", checkpoint.next_line},         {"next_offset", checkpoint.next_offset},
      {"output_bytes", checkpoint.output_bytes},   {"records", checkpoint.records},
      {"error_records", checkpoint.error_records}, {"pairs", checkpoint.pairs}};
  write_file_atomically(path, json.dump(1) + "\n");
}

std::optional<Checkpoint> read_checkpoint(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream.is_open()) return std::nullopt;
  std::stringstream text;
  text << stream.rdbuf();
  const auto refuse = [&](const std::string& why) {
    return ConfigError(
        fmt::format("checkpoint '{}' is corrupt ({}); delete it to start the job "
                    "over, or set job.resume: false",
                    path, why));
  };
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& error) {
    throw refuse(std::string("not JSON: ") + error.what());
  }
  try {
    if (json.at("checkpoint_format").get<int>() != kCheckpointFormat) {
      throw refuse(fmt::format("format {}, this engine writes {}",
                               json.at("checkpoint_format").dump(), kCheckpointFormat));
    }
    Checkpoint checkpoint;
    checkpoint.identity = json.at("identity");
    checkpoint.numerics = json.value("numerics", nlohmann::json());
    const nlohmann::json& range = json.at("range");
    checkpoint.range = {range.at("first_line").get<int64_t>(), range.at("lines").get<int64_t>(),
                        range.at("begin").get<int64_t>(), range.at("end").get<int64_t>()};
    checkpoint.next_line = json.at("next_line").get<int64_t>();
    checkpoint.next_offset = json.at("next_offset").get<int64_t>();
    checkpoint.output_bytes = json.at("output_bytes").get<int64_t>();
    checkpoint.records = json.at("records").get<int64_t>();
    checkpoint.error_records = json.at("error_records").get<int64_t>();
    checkpoint.pairs = json.at("pairs").get<int64_t>();
    const InputRange& r = checkpoint.range;
    const bool consistent =
        checkpoint.next_line >= r.first_line && checkpoint.next_line <= r.first_line + r.lines &&
        checkpoint.next_offset >= r.begin && (r.end < 0 || checkpoint.next_offset <= r.end) &&
        checkpoint.output_bytes >= 0 && checkpoint.records == checkpoint.next_line - r.first_line &&
        checkpoint.error_records >= 0 && checkpoint.error_records <= checkpoint.records;
    if (!consistent) throw refuse("its positions do not fit together");
    return checkpoint;
  } catch (const nlohmann::json::exception& error) {
    throw refuse(std::string("missing or mistyped field: ") + error.what());
  }
}

}  // namespace engine
