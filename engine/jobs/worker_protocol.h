// The pipe protocol between `engine launch` and its workers, written and read here only. One
// message per line, words separated by one space:
//   launcher -> worker   "block INDEX FIRST_LINE LINES BEGIN END"
//   worker -> launcher   "ready"                         its model is loaded
//                        "progress INDEX RECORDS"        after each window of block INDEX
//                        "done INDEX SUMMARY_JSON"       block INDEX's part is complete
// A message that does not parse is a ProtocolError naming what was wrong and quoting the line
// (shortened). Which messages may come when (a "done" for the block the worker runs) is the
// launcher's to check: expect_block below.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "engine/io/input_scan.h"
#include "engine/jobs/batch_job.h"

namespace engine {

class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Each ends with the line break.
std::string encode_block(const InputBlock& block);
std::string encode_ready();
std::string encode_progress(int64_t block_index, int64_t records);
std::string encode_done(int64_t block_index, const JobSummary& summary);

// One line, without its line break. Throws ProtocolError.
InputBlock decode_block(const std::string& line);

struct WorkerMessage {
  enum class Kind { kReady, kProgress, kDone };
  Kind kind = Kind::kReady;
  int64_t block_index = -1;  // progress, done
  int64_t records = 0;       // progress
  JobSummary summary;        // done
};
WorkerMessage decode_worker_message(const std::string& line);

// Throws ProtocolError unless `message` (progress or done) is about `running`, the index of the
// block the worker was handed, or nullopt when it holds none.
void expect_block(const WorkerMessage& message, std::optional<int64_t> running);

// Bytes from a pipe in, whole lines out. A line longer than kMaxLine bytes is a ProtocolError (a
// worker writing garbage must not grow the launcher without bound); finish() says whether bytes
// were left after the last line break when the pipe ended, as a ProtocolError.
class LineBuffer {
 public:
  static constexpr size_t kMaxLine = 1 << 20;

  void append(const char* data, size_t size);
  // The next complete line, or nullopt when none is complete yet.
  std::optional<std::string> next_line();
  void finish() const;

 private:
  std::string pending_;
};

}  // namespace engine
