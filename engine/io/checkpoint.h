// A job's progress on disk, so that a killed job goes on where it stopped. Written after every
// window of records, when the output written so far has been synced: write beside, sync, rename
// over, sync the folder. A crash at any moment leaves either the old checkpoint or the new one,
// each naming bytes of output that are on disk.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/io/input_scan.h"

namespace engine {

struct Checkpoint {
  nlohmann::json identity;   // the job's identity (jobs/job_identity.h)
  nlohmann::json numerics;   // how the run computed (jobs/job_identity.h); null when unrecorded
  InputRange range;          // the part of the input being worked on
  int64_t next_line = 0;     // the first line whose output is not written yet
  int64_t next_offset = 0;   // its byte offset in the input
  int64_t output_bytes = 0;  // the bytes of output that hold every line before next_line
  int64_t records = 0;       // output lines so far, error records included
  int64_t error_records = 0;
  int64_t pairs = 0;
};

// The checkpoint at `path`, or nullopt when there is none. Throws ConfigError naming the file
// when it cannot be read or is not a checkpoint.
std::optional<Checkpoint> read_checkpoint(const std::string& path);
void write_checkpoint(const std::string& path, const Checkpoint& checkpoint);

// Replaces `path` with `text` atomically (write beside, sync, rename, sync the folder). Processes
// writing the same file at once each write their own temporary file; the last rename wins.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace engine
