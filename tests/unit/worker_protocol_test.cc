// The launcher <-> worker protocol's codec (engine/jobs/worker_protocol.h): every message survives
// its own encoding, and a truncated, garbled or out-of-order one is a ProtocolError that says what
// was wrong.
#include <gtest/gtest.h>

#include <string>

#include "engine/jobs/worker_protocol.h"

namespace engine {
namespace {

std::string without_break(const std::string& line) {
  EXPECT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  return line.substr(0, line.size() - 1);
}

// The ProtocolError's message, or "" when `call` does not throw one.
template <typename Call>
std::string protocol_error(Call call) {
  try {
    call();
  } catch (const ProtocolError& error) {
    return error.what();
  }
  return "";
}

TEST(WorkerProtocolTest, EveryMessageSurvivesItsEncoding) {
  InputBlock block;
  block.index = 7;
  block.range = {449, 64, 123456, 140000};
  const InputBlock decoded = decode_block(without_break(encode_block(block)));
  EXPECT_EQ(decoded.index, 7);
  EXPECT_EQ(decoded.range.first_line, 449);
  EXPECT_EQ(decoded.range.lines, 64);
  EXPECT_EQ(decoded.range.begin, 123456);
  EXPECT_EQ(decoded.range.end, 140000);
  block.range.end = -1;  // to the end of the file
  EXPECT_EQ(decode_block(without_break(encode_block(block))).range.end, -1);

  EXPECT_EQ(decode_worker_message(without_break(encode_ready())).kind, WorkerMessage::Kind::kReady);
  const WorkerMessage progress = decode_worker_message(without_break(encode_progress(7, 32)));
  EXPECT_EQ(progress.kind, WorkerMessage::Kind::kProgress);
  EXPECT_EQ(progress.block_index, 7);
  EXPECT_EQ(progress.records, 32);

  JobSummary summary;
  summary.records = 64;
  summary.pairs = 512;
  summary.seconds = 1.5;
  summary.memory.peak_allocated = 1 << 20;
  const WorkerMessage done = decode_worker_message(without_break(encode_done(7, summary)));
  EXPECT_EQ(done.kind, WorkerMessage::Kind::kDone);
  EXPECT_EQ(done.block_index, 7);
  EXPECT_EQ(done.summary.records, 64);
  EXPECT_EQ(done.summary.pairs, 512);
  EXPECT_DOUBLE_EQ(done.summary.seconds, 1.5);
  EXPECT_EQ(done.summary.memory.peak_allocated, 1 << 20);
}

TEST(WorkerProtocolTest, GarbledMessagesAreRefusedSayingWhatIsWrong) {
  const auto worker = [](const std::string& line) {
    return protocol_error([&] { decode_worker_message(line); });
  };
  const auto launcher = [](const std::string& line) {
    return protocol_error([&] { decode_block(line); });
  };
  EXPECT_NE(worker("").find("unknown message"), std::string::npos);
  EXPECT_NE(worker("hello").find("unknown message"), std::string::npos);
  EXPECT_NE(worker("ready now").find("expected \"ready\""), std::string::npos);
  EXPECT_NE(worker("progress 3").find("progress INDEX RECORDS"), std::string::npos);
  EXPECT_NE(worker("progress x 3").find("INDEX 'x' is not a whole number"), std::string::npos);
  EXPECT_NE(worker("progress 3 12a").find("RECORDS '12a'"), std::string::npos);
  EXPECT_NE(worker("progress 3 -1").find("negative"), std::string::npos);
  EXPECT_NE(worker("progress 3 99999999999999999999").find("not a whole number"),
            std::string::npos);
  // A "done" cut off in the middle of its summary, as a worker dying mid-write leaves it.
  const std::string done = without_break(encode_done(3, JobSummary()));
  EXPECT_NE(worker(done.substr(0, done.size() / 2)).find("SUMMARY_JSON is not JSON"),
            std::string::npos);
  EXPECT_NE(worker("done 3").find("done INDEX SUMMARY_JSON"), std::string::npos);
  EXPECT_NE(worker("done 3 [1,2]").find("not a job summary"), std::string::npos);
  EXPECT_NE(worker("done 3 {\"records\":5,\"seconds\":\"fast\"}").find("wrong type"),
            std::string::npos);
  EXPECT_EQ(worker(done), "");

  EXPECT_NE(launcher("block 1 2 3 4").find("block INDEX FIRST_LINE LINES BEGIN END"),
            std::string::npos);
  EXPECT_NE(launcher("block 1 2 3 4 5 6").find("block INDEX FIRST_LINE LINES BEGIN END"),
            std::string::npos);
  EXPECT_NE(launcher("blocks 1 2 3 4 5").find("expected"), std::string::npos);
  EXPECT_NE(launcher("block 1 0 3 4 5").find("FIRST_LINE >= 1"), std::string::npos);
  EXPECT_NE(launcher("block 1 1 3 9 5").find("BEGIN <= END"), std::string::npos);
  EXPECT_NE(launcher("block 1  1 3 4 5").find("expected"), std::string::npos);
  EXPECT_NE(launcher("block 1 x 3 4 5").find("FIRST_LINE 'x' is not a whole number"),
            std::string::npos);
  // The message quotes the line, shortened when long.
  const std::string long_line = "block " + std::string(5000, '9');
  const std::string message = launcher(long_line);
  EXPECT_NE(message.find("(5006 bytes)"), std::string::npos) << message;
  EXPECT_LT(message.size(), 400u);
}

TEST(WorkerProtocolTest, MessagesOutOfTurnAreRefused) {
  WorkerMessage done;
  done.kind = WorkerMessage::Kind::kDone;
  done.block_index = 4;
  EXPECT_EQ(protocol_error([&] { expect_block(done, 4); }), "");
  EXPECT_NE(protocol_error([&] {
              expect_block(done, 5);
            }).find("'done' for block 4 came while the worker was running block 5"),
            std::string::npos);
  EXPECT_NE(protocol_error([&] { expect_block(done, std::nullopt); }).find("held no block"),
            std::string::npos);
  WorkerMessage progress;
  progress.kind = WorkerMessage::Kind::kProgress;
  progress.block_index = 2;
  EXPECT_NE(protocol_error([&] { expect_block(progress, 3); }).find("'progress' for block 2"),
            std::string::npos);
  WorkerMessage ready;
  EXPECT_EQ(protocol_error([&] { expect_block(ready, std::nullopt); }), "");
  EXPECT_NE(protocol_error([&] { expect_block(ready, 1); }).find("running block 1"),
            std::string::npos);
}

TEST(WorkerProtocolTest, LinesAreCutWhereverThePipeSplitsThem) {
  LineBuffer buffer;
  const std::string bytes = encode_ready() + encode_progress(0, 8) + encode_progress(0, 16);
  // One byte at a time: each line appears once it is whole, never before.
  std::vector<std::string> lines;
  for (char byte : bytes) {
    buffer.append(&byte, 1);
    while (auto line = buffer.next_line()) lines.push_back(*line);
  }
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "ready");
  EXPECT_EQ(lines[2], "progress 0 16");
  EXPECT_EQ(protocol_error([&] { buffer.finish(); }), "");

  // The pipe ends in the middle of a message: truncated.
  buffer.append("done 0 {\"rec", 12);
  EXPECT_FALSE(buffer.next_line().has_value());
  EXPECT_NE(protocol_error([&] { buffer.finish(); }).find("ended inside a message: 12 bytes"),
            std::string::npos);

  // Garbage without line breaks does not grow the launcher without bound.
  LineBuffer flooded;
  const std::string chunk(64 * 1024, 'x');
  std::string error;
  for (size_t sent = 0; sent <= LineBuffer::kMaxLine + chunk.size() && error.empty();
       sent += chunk.size()) {
    error = protocol_error([&] { flooded.append(chunk.data(), chunk.size()); });
  }
  EXPECT_NE(error.find("longer than"), std::string::npos);
}

}  // namespace
}  // namespace engine
