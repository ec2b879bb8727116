#include "engine/io/input_scan.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "engine/common/error.h"
#include "engine/common/sha256.h"

namespace engine {

InputScan scan_input(const std::string& path, int64_t block_lines) {
  check<ConfigError>(block_lines > 0, "block_lines must be positive, got {}", block_lines);
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
