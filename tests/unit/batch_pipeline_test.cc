// The batch job's three-stage pipeline (read and tokenize, model, write) with a stand-in family:
// output order and content, the model-busy time, and a model failure stopping the job with its
// error while what was scored before it is written and checkpointed; and the queue between stages.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <thread>

#include "engine/common/bounded_queue.h"
#include "engine/io/checkpoint.h"
#include "engine/jobs/batch_job.h"
#include "engine/memory/device_memory.h"
#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::TempDir;

// Scores each sequence by its token count; optionally fails on one batch.
class CountingAdapter : public FamilyAdapter {
 public:
  bool serves(TaskKind kind) const override { return kind == TaskKind::kScore; }
  std::vector<PlannedSequence> plan(const TaskRecord& record) const override {
    PlannedSequence sequence;
    sequence.encoding.ids.assign(record.passages[0].text.size() + 1, 1);
    sequence.encoding.type_ids.assign(sequence.encoding.ids.size(), 0);
    return {sequence};
  }
  std::vector<SequenceResult> run(const std::vector<const Encoding*>& batch, size_t) override {
    if (++batches_ == fail_at_batch) throw std::runtime_error("the model broke on purpose");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::vector<SequenceResult> results(batch.size());
    for (size_t i = 0; i < batch.size(); ++i)
      results[i].score = static_cast<float>(batch[i]->size());
    return results;
  }
  RecordResult finish(const TaskRecord&, const std::vector<PlannedSequence>&,
                      const std::vector<SequenceResult>& results) const override {
    RecordResult result;
    result.scores.push_back(results[0].score);
    return result;
  }
  std::string describe() const override { return "counts tokens"; }

  int fail_at_batch = 0;  // 1-based; 0 never

 private:
  int batches_ = 0;
};

class BatchPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string input;
    for (int i = 0; i < 40; ++i) {
      input += "{\"id\": " + std::to_string(i) + ", \"query\": \"q\", \"passage\": \"" +
               std::string(static_cast<size_t>(i % 7 + 1), 'x') + "\"}\n";
      if (i == 11) input += "not json\n";  // line 13: an error record, in order
    }
    testing::write_file(dir_.path("in.jsonl"), input);
    config_.task.kind = TaskKind::kScore;
    config_.io.input_path = dir_.path("in.jsonl");
    config_.io.output_path = dir_.path("out.jsonl");
    config_.job.block_lines = 4096;       // one block
    config_.batching.window = 4;          // 11 windows
    config_.batching.max_batch_size = 2;  // 2 batches a window
    config_.memory.warmup = false;
    config_.logging.progress_interval_s = 0;
    part_.output_path = config_.io.output_path;
    part_.range.lines = 41;  // checkpoints are of a range of known length, as the CLI's are
    part_.checkpoint_path = dir_.path("out.jsonl.checkpoint");
    part_.identity = {{"job", "pipeline test"}};
  }

  TempDir dir_;
  Config config_;
  JobPart part_;
  CountingAdapter adapter_;
  std::unique_ptr<DeviceMemory> memory_ = make_host_memory(0);
};

// The model stage a job and the server share: results come back in the order given, whatever
// order the length sort ran them in, and each batch is reported once with its tokens.
TEST_F(BatchPipelineTest, TheModelStageAnswersInTheOrderGivenAndReportsEachBatch) {
  config_.batching.max_batch_size = 3;
  ModelStage stage(config_, adapter_, *memory_);
  std::vector<Encoding> encodings;
  for (size_t length : {2, 9, 4, 7, 1, 9, 3})
    encodings.push_back({std::vector<int64_t>(length, 1), {}});
  std::vector<const Encoding*> sequences;
  for (const Encoding& encoding : encodings) sequences.push_back(&encoding);
  std::vector<BatchReport> reports;
  const BatchOutcome outcome =
      stage.run(sequences, [&](const BatchReport& report) { reports.push_back(report); });
  ASSERT_EQ(outcome.results.size(), encodings.size());
  for (size_t i = 0; i < encodings.size(); ++i) {
    EXPECT_EQ(outcome.errors[i], "");
    EXPECT_EQ(outcome.results[i].score, static_cast<float>(encodings[i].size())) << i;
  }
  ASSERT_EQ(reports.size(), 3u);  // 7 sequences, at most 3 a batch
  size_t sequences_reported = 0, real_tokens = 0;
  for (const BatchReport& report : reports) {
    sequences_reported += report.sequences;
    real_tokens += report.real_tokens;
    EXPECT_GE(report.padded_tokens, report.real_tokens);
    EXPECT_GT(report.seconds, 0.0);
  }
  EXPECT_EQ(sequences_reported, 7u);
  EXPECT_EQ(real_tokens, 35u);
  EXPECT_EQ(stage.stats().forward_passes, 3);
}

TEST_F(BatchPipelineTest, EveryLineComesOutOnceInInputOrder) {
  const JobSummary summary = run_batch_job(config_, adapter_, *memory_, part_);
  const std::vector<std::string> lines = testing::read_lines(dir_.path("out.jsonl"));
  ASSERT_EQ(lines.size(), 41u);
  for (int i = 0, line = 0; line < 41; ++line) {
    const nlohmann::json out = nlohmann::json::parse(lines[static_cast<size_t>(line)]);
    if (line == 12) {
      EXPECT_EQ(out.at("line"), 13);
      EXPECT_TRUE(out.contains("error"));
      continue;
    }
    EXPECT_EQ(out.at("id"), i);
    EXPECT_FLOAT_EQ(out.at("score").get<float>(), static_cast<float>(i % 7 + 2));
    ++i;
  }
  EXPECT_EQ(summary.records, 41);
  EXPECT_EQ(summary.error_records, 1);
  EXPECT_GT(summary.batches, 10);
  // Each batch sleeps 2 ms in the model stage: the busy time counts them, within the wall time.
  EXPECT_GE(summary.model_seconds, 0.002 * static_cast<double>(summary.batches));
  EXPECT_LE(summary.model_seconds, summary.seconds);
  EXPECT_FALSE(std::filesystem::exists(part_.checkpoint_path));
}

TEST_F(BatchPipelineTest, AModelFailureStopsTheJobAfterWritingTheWindowsBeforeIt) {
  adapter_.fail_at_batch = 9;  // the first batch of the fifth window
  try {
    run_batch_job(config_, adapter_, *memory_, part_);
    FAIL() << "the model's error was swallowed";
  } catch (const std::runtime_error& error) {
    EXPECT_STREQ(error.what(), "the model broke on purpose");
  }
  const std::optional<Checkpoint> checkpoint = read_checkpoint(part_.checkpoint_path);
  ASSERT_TRUE(checkpoint.has_value()) << "the four windows scored before were checkpointed";
  // Windows of four sequences, two batches each; line 13 (no sequence) rides in the fourth.
  EXPECT_EQ(checkpoint->records, 17);
  EXPECT_EQ(testing::read_lines(dir_.path("out.jsonl.partial")).size(), 17u);
  EXPECT_FALSE(std::filesystem::exists(dir_.path("out.jsonl"))) << "no output that is not whole";

  // The same job resumed goes on from there to the whole output.
  adapter_.fail_at_batch = 0;
  config_.job.resume = true;
  const JobSummary resumed = run_batch_job(config_, adapter_, *memory_, part_);
  EXPECT_EQ(resumed.resumed_records, 17);
  EXPECT_EQ(testing::read_lines(dir_.path("out.jsonl")).size(), 41u);
}

TEST(BoundedQueueTest, KeepsOrderBlocksWhenFullAndDrainsAfterClose) {
  BoundedQueue<int> queue(2);
  std::atomic<int> pushed{0};
  std::thread producer([&] {
    for (int i = 0; i < 5; ++i) {
      if (!queue.push(i)) return;
      ++pushed;
    }
    queue.close();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(pushed.load(), 2) << "the producer waits while the queue holds its capacity";
  std::vector<int> got;
  while (std::optional<int> item = queue.pop()) got.push_back(*item);
  producer.join();
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_FALSE(queue.push(9)) << "a closed queue takes nothing";
}

TEST(BoundedQueueTest, CloseReleasesAProducerWaitingForRoom) {
  BoundedQueue<int> queue(1);
  ASSERT_TRUE(queue.push(1));
  std::atomic<bool> returned{false}, accepted{true};
  std::thread producer([&] {
    accepted = queue.push(2);
    returned = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(returned.load());
  queue.close();
  producer.join();
  EXPECT_FALSE(accepted.load());
  EXPECT_EQ(queue.pop(), std::optional<int>(1)) << "what was queued before the close is kept";
  EXPECT_EQ(queue.pop(), std::nullopt);
}

}  // namespace
}  // namespace engine
