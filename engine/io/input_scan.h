// One pass over a JSONL input before a job that can be resumed or split: its size, line count and
// SHA-256 (what the job's identity records), and where each block of `block_lines` lines starts.
// Blocks are the unit of sharding, checkpointing and retry; batching windows never straddle one,
// so a block's output is the same bytes however the input is split (docs/jobs.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace engine {

// Lines [first_line, first_line + lines) of the input, at bytes [begin, end). `end` -1 reads to
// the end of the file. Line numbers are 1-based, as error records report them.
struct InputRange {
  int64_t first_line = 1;
  int64_t lines = 0;
  int64_t begin = 0;
  int64_t end = -1;

  int64_t last_line() const { return first_line + lines - 1; }
};

struct InputBlock {
  int64_t index = 0;
  InputRange range;
};

struct InputScan {
  std::string path;
  int64_t block_lines = 0;  // the lines of every block but the last (resolved when asked for 0)
  int64_t bytes = 0;
  int64_t lines = 0;  // a last line without a line break counts, as the reader reads it
  std::string sha256;
  std::vector<InputBlock> blocks;  // cover every line once, in order; none for an empty input
};

// Blocks of `block_lines` lines, or with 0 (job.block_lines: auto) of a size chosen from the
// input's line count alone (auto_block_lines), so that every process of a job, and the job
// resumed with any number of workers, makes the same blocks. Throws ConfigError when the file
// cannot be read.
InputScan scan_input(const std::string& path, int64_t block_lines);

// job.block_lines auto for an input of `lines` lines: about kAutoBlocks blocks, so that 8 workers
// get 8 blocks each and the last block to finish holds up the end little, each a multiple of
// kAutoBlockUnit lines (at least one unit, and at most kAutoMaxBlockUnits: 65,536 lines).
inline constexpr int64_t kAutoBlocks = 64;
inline constexpr int64_t kAutoBlockUnit = 8;
inline constexpr int64_t kAutoMaxBlockUnits = 8192;
int64_t auto_block_lines(int64_t lines);

// Blocks [world_size's share of rank] of `blocks`: contiguous, as even as whole blocks allow.
std::vector<InputBlock> blocks_of_rank(const std::vector<InputBlock>& blocks, int rank,
                                       int world_size);

}  // namespace engine
