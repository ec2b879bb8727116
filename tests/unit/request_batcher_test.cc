// engine serve's request batcher with a stand-in model: requests from many threads batched
// together, each answered with its own sequences' results in order; a full queue refusing at once;
// stop() answering what is queued; and the Prometheus text of the metrics.
#include "engine/serve/request_batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "engine/memory/device_memory.h"
#include "engine/serve/metrics.h"

namespace engine {
namespace {

// Scores a sequence by its first id; counts batches; can be slowed down.
class EchoAdapter : public FamilyAdapter {
 public:
  bool serves(TaskKind) const override { return true; }
  std::vector<PlannedSequence> plan(const TaskRecord&) const override { return {}; }
  std::vector<SequenceResult> run(const std::vector<const Encoding*>& batch, size_t) override {
    std::this_thread::sleep_for(delay);
    batches.fetch_add(1);
    largest_batch = std::max(largest_batch.load(), batch.size());
    std::vector<SequenceResult> results(batch.size());
    for (size_t i = 0; i < batch.size(); ++i)
      results[i].score = static_cast<float>(batch[i]->ids[0]);
    return results;
  }
  RecordResult finish(const TaskRecord&, const std::vector<PlannedSequence>&,
                      const std::vector<SequenceResult>&) const override {
    return {};
  }
  std::string describe() const override { return "echo"; }

  std::chrono::milliseconds delay{0};
  std::atomic<int> batches{0};
  std::atomic<size_t> largest_batch{0};
};

Encoding sequence(int64_t first_id, size_t length) {
  Encoding encoding;
  encoding.ids.assign(length, 5);
  encoding.ids[0] = first_id;
  encoding.type_ids.assign(length, 0);
  return encoding;
}

class RequestBatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.task.max_length = 64;
    config_.batching.max_batch_size = 64;
    config_.batching.max_tokens = 4096;
    config_.serve.max_wait_ms = 20;
  }

  Config config_;
  EchoAdapter adapter_;
  ServeMetrics metrics_;
  std::unique_ptr<DeviceMemory> memory_ = make_host_memory(0);
};

TEST_F(RequestBatcherTest, ConcurrentRequestsShareBatchesAndEachGetsItsOwnResults) {
  RequestBatcher batcher(config_, adapter_, *memory_, metrics_);
  constexpr int kClients = 16;
  std::vector<std::vector<Encoding>> requests(kClients);
  std::vector<std::thread> clients;
  std::atomic<int> wrong{0};
  for (int client = 0; client < kClients; ++client) {
    for (int s = 0; s < 3; ++s) {
      requests[client].push_back(sequence(client * 100 + s, static_cast<size_t>(4 + client % 5)));
    }
    clients.emplace_back([&, client] {
      std::vector<const Encoding*> mine;
      for (const Encoding& encoding : requests[client]) mine.push_back(&encoding);
      auto answer = batcher.submit(mine);
      ASSERT_TRUE(answer.has_value());
      const BatchOutcome outcome = answer->get();
      for (int s = 0; s < 3; ++s) {
        if (outcome.results[s].score != static_cast<float>(client * 100 + s) ||
            !outcome.errors[s].empty()) {
          wrong.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& client : clients) client.join();
  EXPECT_EQ(wrong.load(), 0) << "every request gets its own sequences' results, in order";
  EXPECT_LT(adapter_.batches.load(), kClients) << "requests that arrive together share batches";
  EXPECT_GT(adapter_.largest_batch.load(), 3u);
  EXPECT_EQ(batcher.queued_sequences(), 0u);
}

TEST_F(RequestBatcherTest, AFullQueueRefusesAtOnceAndStopAnswersWhatIsQueued) {
  config_.serve.max_queue_sequences = 4;
  config_.serve.max_wait_ms = 2000;  // the first request waits for companions
  RequestBatcher batcher(config_, adapter_, *memory_, metrics_);
  const Encoding a = sequence(1, 8), b = sequence(2, 8), c = sequence(3, 8);
  auto first = batcher.submit({&a, &b, &c});
  ASSERT_TRUE(first.has_value());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(batcher.submit({&a, &b}).has_value()) << "3 + 2 sequences pass the limit of 4";
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(100))
      << "refused at once, not after waiting";
  EXPECT_TRUE(batcher.submit({&a}).has_value()) << "3 + 1 fits";
  batcher.stop();  // long before max_wait_ms: the queued requests are answered now
  EXPECT_EQ(first->get().results[2].score, 3.0f);
  EXPECT_FALSE(batcher.submit({&a}).has_value()) << "a stopped batcher takes nothing";
  // A request larger than the whole queue is still taken when the queue is empty.
  RequestBatcher other(config_, adapter_, *memory_, metrics_);
  const Encoding d = sequence(4, 8), e = sequence(5, 8);
  auto big = other.submit({&a, &b, &c, &d, &e});
  ASSERT_TRUE(big.has_value());
  other.stop();
  EXPECT_EQ(big->get().results[4].score, 5.0f);
}

TEST_F(RequestBatcherTest, AModelFailureReachesEveryRequestOfItsRound) {
  class Broken : public EchoAdapter {
    std::vector<SequenceResult> run(const std::vector<const Encoding*>&, size_t) override {
      throw std::runtime_error("broken on purpose");
    }
  } broken;
  RequestBatcher batcher(config_, broken, *memory_, metrics_);
  const Encoding a = sequence(1, 8);
  auto answer = batcher.submit({&a});
  ASSERT_TRUE(answer.has_value());
  EXPECT_THROW(answer->get(), std::runtime_error);
}

TEST(ServeMetricsTest, PrometheusTextHasCumulativeBucketsAndEveryCounter) {
  Histogram histogram({0.1, 1});
  histogram.observe(0.05);
  histogram.observe(0.5);
  histogram.observe(5);
  const std::string text = histogram.text("x_seconds", "route=\"/r\"");
  EXPECT_NE(text.find("x_seconds_bucket{route=\"/r\",le=\"0.1\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_bucket{route=\"/r\",le=\"1\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_bucket{route=\"/r\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("x_seconds_sum{route=\"/r\"} 5.55\n"), std::string::npos) << text;
  EXPECT_NE(text.find("x_seconds_count{route=\"/r\"} 3\n"), std::string::npos);

  ServeMetrics metrics;
  metrics.on_response("/rerank", 200, 0.01);
  metrics.on_response("/rerank", 200, 0.02);
  metrics.on_response("/rerank", 429, 0.001);
  metrics.on_batch(4, 100, 128, 0.003);
  ServeGauges gauges;
  gauges.queued_sequences = 7;
  gauges.out_of_memory = 2;
  gauges.ready = true;
  const std::string all = metrics.text(gauges);
  EXPECT_NE(all.find("engine_requests_total{route=\"/rerank\",status=\"200\"} 2\n"),
            std::string::npos);
  EXPECT_NE(all.find("engine_requests_total{route=\"/rerank\",status=\"429\"} 1\n"),
            std::string::npos);
  EXPECT_NE(all.find("engine_queue_sequences 7\n"), std::string::npos);
  EXPECT_NE(all.find("engine_oom_splits_total 2\n"), std::string::npos);
  EXPECT_NE(all.find("engine_tokens_total{kind=\"padded\"} 128\n"), std::string::npos);
  EXPECT_NE(all.find("# TYPE engine_batch_size histogram\n"), std::string::npos);
  EXPECT_NE(all.find("engine_ready 1\n"), std::string::npos);
}

}  // namespace
}  // namespace engine
