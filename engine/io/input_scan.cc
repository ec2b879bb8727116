#include "engine/io/input_scan.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "engine/common/error.h"
#include "engine/common/sha256.h"

namespace engine {

namespace {

// Joins every `factor` consecutive blocks into one.
std::vector<InputBlock> join_blocks(const std::vector<InputBlock>& blocks, int64_t factor) {
  std::vector<InputBlock> joined;
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (static_cast<int64_t>(i) % factor == 0) {
      InputBlock block = blocks[i];
      block.index = static_cast<int64_t>(joined.size());
      joined.push_back(block);
    } else {
      joined.back().range.lines += blocks[i].range.lines;
      joined.back().range.end = blocks[i].range.end;
    }
  }
  return joined;
}

}  // namespace

int64_t auto_block_lines(int64_t lines) {
  const int64_t units = (lines + kAutoBlockUnit - 1) / kAutoBlockUnit;
  const int64_t per_block =
      std::clamp<int64_t>((units + kAutoBlocks - 1) / kAutoBlocks, 1, kAutoMaxBlockUnits);
  return per_block * kAutoBlockUnit;
}

InputScan scan_input(const std::string& path, int64_t requested_block_lines) {
  check<ConfigError>(requested_block_lines >= 0, "block_lines must be positive or 0 (auto), got {}",
                     requested_block_lines);
  // Auto: blocks of one unit first, joined once the line count is known (a single pass).
  const int64_t block_lines = requested_block_lines > 0 ? requested_block_lines : kAutoBlockUnit;
  std::unique_ptr<std::FILE, decltype(&std::fclose)> file(std::fopen(path.c_str(), "rb"),
                                                          &std::fclose);
  check<ConfigError>(file != nullptr, "cannot open input '{}': {}", path, std::strerror(errno));
  InputScan scan;
  scan.path = path;
  Sha256 sha;
  std::vector<char> buffer(1 << 20);
  // Every line starts a block when (its index % block_lines) == 0; a line starts at offset 0 and
  // after every line break that is not the file's last byte.
  bool at_line_start = true;
  size_t read = 0;
  while ((read = std::fread(buffer.data(), 1, buffer.size(), file.get())) > 0) {
    sha.update(buffer.data(), read);
    for (size_t i = 0; i < read; ++i) {
      if (at_line_start) {
        if (scan.lines % block_lines == 0) {
          if (!scan.blocks.empty())
            scan.blocks.back().range.end = scan.bytes + static_cast<int64_t>(i);
          InputBlock block;
          block.index = static_cast<int64_t>(scan.blocks.size());
          block.range.first_line = scan.lines + 1;
          block.range.begin = scan.bytes + static_cast<int64_t>(i);
          scan.blocks.push_back(block);
        }
        ++scan.lines;
        ++scan.blocks.back().range.lines;
        at_line_start = false;
      }
      if (buffer[i] == '\n') at_line_start = true;
    }
    scan.bytes += static_cast<int64_t>(read);
  }
  check<ConfigError>(!std::ferror(file.get()), "cannot read input '{}': {}", path,
                     std::strerror(errno));
  if (!scan.blocks.empty()) scan.blocks.back().range.end = scan.bytes;
  scan.sha256 = sha.hex();
  scan.block_lines = block_lines;
  if (requested_block_lines == 0) {
    scan.block_lines = auto_block_lines(scan.lines);
    scan.blocks = join_blocks(scan.blocks, scan.block_lines / kAutoBlockUnit);
  }
  return scan;
}

std::vector<InputBlock> blocks_of_rank(const std::vector<InputBlock>& blocks, int rank,
                                       int world_size) {
  const auto count = static_cast<int64_t>(blocks.size());
  const int64_t first = count * rank / world_size;
  const int64_t last = count * (rank + 1) / world_size;
  return {blocks.begin() + first, blocks.begin() + last};
}

}  // namespace engine
