#include "engine/jobs/job_parts.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "engine/common/error.h"
#include "engine/io/checkpoint.h"
#include "engine/io/jsonl_writer.h"
#include "engine/jobs/job_identity.h"

namespace engine {
namespace {

using File = std::unique_ptr<std::FILE, decltype(&std::fclose)>;

File open_file(const std::string& path, const char* mode) {
  return File(std::fopen(path.c_str(), mode), &std::fclose);
}

// Appends the part at `path` to `out` and returns how many lines it held.
int64_t append_part(const std::string& path, std::FILE* out, const std::string& out_path) {
  File in = open_file(path, "rb");
  check<ConfigError>(in != nullptr, "cannot read part '{}': {}", path, std::strerror(errno));
  std::vector<char> buffer(1 << 20);
  int64_t lines = 0;
  size_t read = 0;
  while ((read = std::fread(buffer.data(), 1, buffer.size(), in.get())) > 0) {
    for (size_t i = 0; i < read; ++i) lines += buffer[i] == '\n';
    check<std::runtime_error>(std::fwrite(buffer.data(), 1, read, out) == read,
                              "cannot write '{}': {}", out_path, std::strerror(errno));
  }
  return lines;
}

}  // namespace

JobParts::JobParts(const std::string& output_path) : folder_(output_path + ".parts") {}

std::string JobParts::output_of(int64_t block) const {
  return fmt::format("{}/block-{:06}.jsonl", folder_, block);
}

std::string JobParts::checkpoint_of(int64_t block) const {
  return fmt::format("{}/block-{:06}.checkpoint", folder_, block);
}

bool JobParts::complete(const InputBlock& block) const {
  return std::filesystem::is_regular_file(output_of(block.index));
}

JobPart JobParts::part(const InputBlock& block, const nlohmann::json& identity) const {
  JobPart part;
  part.range = block.range;
  part.output_path = output_of(block.index);
  part.checkpoint_path = checkpoint_of(block.index);
  part.identity = identity;
  return part;
}

void JobParts::claim(const nlohmann::json& identity) const {
  std::filesystem::create_directories(folder_);
  const std::string file = folder_ + "/job.json";
  if (!std::filesystem::exists(file)) {
    write_file_atomically(file, identity.dump(1) + "\n");
    return;
  }
  check_identity(identity);
}

void JobParts::check_identity(const nlohmann::json& identity) const {
  const std::string changed = identity_difference(recorded_identity(), identity);
  check<ConfigError>(changed.empty(),
                     "'{}' holds the parts of a different job: {} changed since. Restore them to "
                     "finish that job, or delete the folder to start this one",
                     folder_, changed);
}

nlohmann::json JobParts::recorded_identity() const {
  const std::string file = folder_ + "/job.json";
  std::ifstream stream(file);
  check<ConfigError>(stream.good(), "'{}' is missing: no job was started in '{}'", file, folder_);
  std::stringstream text;
  text << stream.rdbuf();
  try {
    return nlohmann::json::parse(text.str());
  } catch (const nlohmann::json::exception& error) {
    throw ConfigError(fmt::format("'{}' is corrupt ({}); delete '{}' to start the job over", file,
                                  error.what(), folder_));
  }
}

std::vector<InputBlock> JobParts::pending(const InputScan& scan) const {
  std::vector<InputBlock> blocks;
  for (const InputBlock& block : scan.blocks) {
    if (!complete(block)) blocks.push_back(block);
  }
  return blocks;
}

void JobParts::merge(const InputScan& scan, const nlohmann::json& identity,
                     const std::string& output_path) const {
  check_identity(identity);
  const std::vector<InputBlock> missing = pending(scan);
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 8; ++i) {
      list += fmt::format("{}block {} (lines {}-{})", i ? ", " : "", missing[i].index,
                          missing[i].range.first_line, missing[i].range.last_line());
    }
    if (missing.size() > 8) list += fmt::format(" and {} more", missing.size() - 8);
    throw ConfigError(fmt::format(
        "cannot merge '{}': {} of {} parts are not complete: {}. Run the job again (any number "
        "of ranks, or engine launch) to finish them",
        folder_, missing.size(), scan.blocks.size(), list));
  }
  const std::string partial = JsonlWriter::partial_path(output_path);
  File out = open_file(partial, "wb");
  check<ConfigError>(out != nullptr, "cannot write output '{}': {}", partial, std::strerror(errno));
  for (const InputBlock& block : scan.blocks) {
    const int64_t lines = append_part(output_of(block.index), out.get(), partial);
    check<ConfigError>(lines == block.range.lines,
                       "part '{}' holds {} lines but block {} has {} (lines {}-{}); delete the "
                       "part and run the job again",
                       output_of(block.index), lines, block.index, block.range.lines,
                       block.range.first_line, block.range.last_line());
  }
  const bool ok = std::fflush(out.get()) == 0 && fsync(fileno(out.get())) == 0;
  check<std::runtime_error>(ok, "cannot flush '{}': {}", partial, std::strerror(errno));
  out.reset();
  std::filesystem::rename(partial, output_path);
  std::filesystem::remove_all(folder_);
}

}  // namespace engine
