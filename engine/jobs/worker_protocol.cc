#include "engine/jobs/worker_protocol.h"

#include <cerrno>
#include <cstdlib>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "engine/common/error.h"

namespace engine {
namespace {

std::string quoted(const std::string& line) {
  constexpr size_t kShown = 120;
  return line.size() <= kShown
             ? fmt::format("'{}'", line)
             : fmt::format("'{}…' ({} bytes)", line.substr(0, kShown), line.size());
}

// The line's words split at single spaces; `limit` words at most, the last one holding the rest.
std::vector<std::string> words_of(const std::string& line, size_t limit) {
  std::vector<std::string> words;
  size_t start = 0;
  while (words.size() + 1 < limit) {
    const size_t space = line.find(' ', start);
    if (space == std::string::npos) break;
    words.push_back(line.substr(start, space - start));
    start = space + 1;
  }
  words.push_back(line.substr(start));
  return words;
}

int64_t number(const std::string& word, const char* what, const std::string& line) {
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(word.c_str(), &end, 10);
  check<ProtocolError>(!word.empty() && *end == '\0' && errno == 0 &&
                           (word[0] == '-' || (word[0] >= '0' && word[0] <= '9')),
                       "message {}: {} '{}' is not a whole number", quoted(line), what, word);
  return value;
}

void expect_words(const std::vector<std::string>& words, size_t count, const char* form,
                  const std::string& line) {
  check<ProtocolError>(words.size() == count, "message {}: expected \"{}\"", quoted(line), form);
}

}  // namespace

std::string encode_block(const InputBlock& block) {
  const InputRange& range = block.range;
  return fmt::format("block {} {} {} {} {}\n", block.index, range.first_line, range.lines,
                     range.begin, range.end);
}

std::string encode_ready() { return "ready\n"; }

std::string encode_progress(int64_t block_index, int64_t records) {
  return fmt::format("progress {} {}\n", block_index, records);
}

std::string encode_done(int64_t block_index, const JobSummary& summary) {
  return fmt::format("done {} {}\n", block_index, summary_json(summary).dump());
}

InputBlock decode_block(const std::string& line) {
  constexpr const char* kForm = "block INDEX FIRST_LINE LINES BEGIN END";
  const std::vector<std::string> words = words_of(line, 7);
  check<ProtocolError>(words[0] == "block", "message {}: expected \"{}\"", quoted(line), kForm);
  expect_words(words, 6, kForm, line);
  InputBlock block;
  block.index = number(words[1], "INDEX", line);
  block.range.first_line = number(words[2], "FIRST_LINE", line);
  block.range.lines = number(words[3], "LINES", line);
  block.range.begin = number(words[4], "BEGIN", line);
  block.range.end = number(words[5], "END", line);
  const InputRange& range = block.range;
  check<ProtocolError>(block.index >= 0 && range.first_line >= 1 && range.lines >= 1 &&
                           range.begin >= 0 && (range.end == -1 || range.end >= range.begin),
                       "message {}: a block needs INDEX >= 0, FIRST_LINE >= 1, LINES >= 1 and "
                       "0 <= BEGIN <= END (END -1: to the end of the file)",
                       quoted(line));
  return block;
}

WorkerMessage decode_worker_message(const std::string& line) {
  WorkerMessage message;
  const std::vector<std::string> words = words_of(line, 3);
  const std::string& kind = words[0];
  if (kind == "ready") {
    expect_words(words, 1, "ready", line);
    message.kind = WorkerMessage::Kind::kReady;
  } else if (kind == "progress") {
    expect_words(words, 3, "progress INDEX RECORDS", line);
    message.kind = WorkerMessage::Kind::kProgress;
    message.block_index = number(words[1], "INDEX", line);
    message.records = number(words[2], "RECORDS", line);
    check<ProtocolError>(message.records >= 0, "message {}: RECORDS is negative", quoted(line));
  } else if (kind == "done") {
    expect_words(words, 3, "done INDEX SUMMARY_JSON", line);
    message.kind = WorkerMessage::Kind::kDone;
    message.block_index = number(words[1], "INDEX", line);
    nlohmann::json summary;
    try {
      summary = nlohmann::json::parse(words[2]);
    } catch (const nlohmann::json::exception& error) {
      throw ProtocolError(
          fmt::format("message {}: SUMMARY_JSON is not JSON: {}", quoted(line), error.what()));
    }
    check<ProtocolError>(summary.is_object() && summary.contains("records") &&
                             summary["records"].is_number_integer(),
                         "message {}: SUMMARY_JSON is not a job summary (no integer \"records\")",
                         quoted(line));
    try {
      message.summary = summary_from_json(summary);
    } catch (const nlohmann::json::exception& error) {
      throw ProtocolError(fmt::format("message {}: SUMMARY_JSON has a field of the wrong type: {}",
                                      quoted(line), error.what()));
    }
  } else {
    throw ProtocolError(fmt::format(
        "message {}: unknown message; expected ready, progress INDEX RECORDS or done INDEX "
        "SUMMARY_JSON",
        quoted(line)));
  }
  return message;
}

void expect_block(const WorkerMessage& message, std::optional<int64_t> running) {
  if (message.kind == WorkerMessage::Kind::kReady) {
    check<ProtocolError>(!running, "'ready' came while the worker was running block {}",
                         running.value_or(-1));
    return;
  }
  const char* what = message.kind == WorkerMessage::Kind::kDone ? "done" : "progress";
  check<ProtocolError>(running.has_value(), "'{}' for block {} came while the worker held no block",
                       what, message.block_index);
  check<ProtocolError>(*running == message.block_index,
                       "'{}' for block {} came while the worker was running block {}", what,
                       message.block_index, *running);
}

void LineBuffer::append(const char* data, size_t size) {
  pending_.append(data, size);
  const size_t last_break = pending_.rfind('\n');
  const size_t tail =
      last_break == std::string::npos ? pending_.size() : pending_.size() - last_break - 1;
  check<ProtocolError>(tail <= kMaxLine, "a message longer than {} bytes (no line break)",
                       kMaxLine);
}

std::optional<std::string> LineBuffer::next_line() {
  const size_t end = pending_.find('\n');
  if (end == std::string::npos) return std::nullopt;
  std::string line = pending_.substr(0, end);
  pending_.erase(0, end + 1);
  check<ProtocolError>(line.size() <= kMaxLine, "a message longer than {} bytes", kMaxLine);
  return line;
}

void LineBuffer::finish() const {
  check<ProtocolError>(pending_.empty(),
                       "the pipe ended inside a message: {} bytes without a line "
                       "break ('{}')",
                       pending_.size(), pending_.substr(0, 120));
}

}  // namespace engine
