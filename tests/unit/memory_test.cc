// The memory controls on their own: the counting CPU allocator and its limit, the batch
// controller's fit, the cache policy, and the guarded runner's split-and-retry, with fakes where a
// model would be.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include "engine/jobs/guarded_runner.h"
#include "engine/memory/batch_controller.h"
#include "engine/memory/cache_policy.h"
#include "engine/memory/counting_cpu_allocator.h"
#include "engine/memory/cuda_backend.h"
#include "engine/memory/device_memory.h"
#include "engine/memory/host_block_pool.h"
#include "engine/runtime/devices.h"

namespace engine {
namespace {

TEST(CountingCpuAllocatorTest, CountsLiveTensorsAndTheirPeak) {
  auto memory = make_host_memory(0);
  CountingCpuAllocator& counts = CountingCpuAllocator::install();
  const int64_t before = counts.allocated();
  memory->reset_peak();
  {
    at::Tensor a = at::empty({1 << 20}, at::kFloat);  // 4 MiB
    EXPECT_EQ(counts.allocated() - before, 4 << 20);
    {
      at::Tensor b = at::empty({1 << 19}, at::kFloat);  // 2 MiB
      EXPECT_EQ(counts.allocated() - before, 6 << 20);
    }
    EXPECT_EQ(counts.allocated() - before, 4 << 20);
  }
  EXPECT_EQ(counts.allocated(), before);
  EXPECT_EQ(memory->stats().peak_allocated - before, 6 << 20);
}

TEST(CountingCpuAllocatorTest, RefusesPastTheLimitWithLibTorchsOutOfMemoryError) {
  auto memory = make_host_memory(0);
  CountingCpuAllocator& counts = CountingCpuAllocator::install();
  counts.set_limit(counts.allocated() + (8 << 20));
  at::Tensor fits = at::empty({1 << 20}, at::kFloat);
  try {
    at::Tensor too_big = at::empty({2 << 20}, at::kFloat);
    FAIL() << "8 MiB more must be refused under the limit";
  } catch (const c10::OutOfMemoryError& error) {
    EXPECT_NE(std::string(error.what()).find("CPU out of memory"), std::string::npos);
    EXPECT_TRUE(is_out_of_memory(error));
  }
  // A matrix product inside LibTorch fails the same way.
  EXPECT_THROW(at::matmul(at::ones({2048, 1024}), at::ones({1024, 2048})), c10::OutOfMemoryError);
  counts.set_limit(0);
  EXPECT_NO_THROW(at::empty({2 << 20}, at::kFloat));
}

TEST(HostBlockPoolTest, SizeClassesRoundUpByAtMostAnEighth) {
  EXPECT_EQ(HostBlockPool::size_class(1 << 20), size_t{1} << 20);
  EXPECT_EQ(HostBlockPool::size_class((1 << 20) + 1), (size_t{1} << 20) + (128 << 10));
  EXPECT_EQ(HostBlockPool::size_class(12'582'912 + 100), size_t{13} << 20);
  for (size_t bytes : {size_t{300'000}, size_t{1'572'864}, size_t{7'000'001}, size_t{1} << 30}) {
    const size_t rounded = HostBlockPool::size_class(bytes);
    EXPECT_GE(rounded, bytes);
    EXPECT_LE(rounded, bytes + bytes / 8 + 4096) << bytes;
    EXPECT_EQ(rounded % 4096, 0u);
  }
}

TEST(HostBlockPoolTest, ReusesFreedBlocksAndNeverMapsMoreThanItsPeakInUse) {
  HostBlockPool pool;
  void* a = pool.take(3 << 20);
  void* b = pool.take(3 << 20);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  static_cast<char*>(a)[(3 << 20) - 1] = 1;  // the whole block is writable
  const int64_t two = pool.mapped_bytes();
  EXPECT_EQ(two, 2 * static_cast<int64_t>(HostBlockPool::size_class(3 << 20)));
  pool.give_back(a, 3 << 20);
  EXPECT_EQ(pool.cached_bytes(), two / 2);
  EXPECT_EQ(pool.take((3 << 20) - 1000), a) << "the same size class comes back from the cache";
  EXPECT_EQ(pool.cached_bytes(), 0);
  pool.give_back(a, 3 << 20);
  pool.give_back(b, 3 << 20);
  // A block of another class: the cache is unmapped first, so the pool stays at the 6 MiB it
  // once had in use.
  void* c = pool.take(5 << 20);
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(pool.cached_bytes(), 0) << "both 3 MiB blocks went back to the system";
  EXPECT_EQ(pool.mapped_bytes(), 5 << 20);
  pool.give_back(c, 5 << 20);
  EXPECT_EQ(pool.release_cached(), 5 << 20);
  EXPECT_EQ(pool.mapped_bytes(), 0);
  EXPECT_EQ(pool.cached_bytes(), 0);
}

TEST(HostMemoryTest, ReservedIsLiveTensorsPlusKeptBlocksAndEmptyingGivesThemBack) {
  auto memory = make_host_memory(0);
  memory->empty_cache();
  const MemoryStats before = memory->stats();
  EXPECT_EQ(before.reserved, before.allocated) << "nothing kept after emptying";
  { at::Tensor large = at::ones({4 << 20}, at::kFloat); }  // 16 MiB, freed at once
  const MemoryStats kept = memory->stats();
  EXPECT_EQ(kept.allocated, before.allocated);
  EXPECT_GE(kept.reserved - kept.allocated, 16 << 20) << "the freed block is kept for reuse";
  EXPECT_GE(kept.peak_reserved, before.allocated + (16 << 20));
  memory->empty_cache();
  EXPECT_EQ(memory->stats().reserved, before.allocated);
  EXPECT_GT(process_resident().peak, 16 << 20);
}

TEST(BatchControllerTest, LearnsPerTokenAndQuadraticTerms) {
  BatchController controller(0);
  // rise = 1000 * B*L + 2 * B*L^2
  for (auto [batch, length] : {std::pair<size_t, size_t>{4, 64}, {2, 256}, {8, 128}}) {
    const double tokens = static_cast<double>(batch * length);
    controller.observe(batch, length, static_cast<int64_t>(1000 * tokens + 2 * tokens * length));
  }
  EXPECT_NEAR(controller.predicted_rise(3, 512), 1000.0 * 1536 + 2.0 * 1536 * 512, 1.0);
}

TEST(BatchControllerTest, KeepsBatchesUnderTheBudget) {
  BatchController controller(1'000'000);
  EXPECT_EQ(controller.max_batch(128, 64), 64u) << "nothing observed yet: no limit";
  controller.observe(4, 100, 400 * 1000);  // 1000 bytes per token at length 100
  EXPECT_EQ(controller.max_batch(100, 64), 10u);
  // One length seen: as much per token (linear) or per token x length (quadratic), whichever
  // predicts more.
  EXPECT_EQ(controller.max_batch(200, 64), 2u) << "quadratic: 400 kB a sequence";
  EXPECT_EQ(controller.max_batch(50, 64), 20u) << "linear: 50 kB a sequence";
  EXPECT_EQ(controller.max_batch(5000, 64), 1u) << "never below one";
  controller.observe(2, 400, 2 * 400 * 1000);  // a second length: the rise is linear after all
  EXPECT_EQ(controller.max_batch(200, 64), 5u);
}

// A family's estimate plans the first batch, and gives one length's observations their shape: a
// graph with no length-squared tensor is not taken for a quadratic one, so a long sequence next to
// short ones does not shrink every longer batch to one.
TEST(BatchControllerTest, APriorPlansTheFirstBatchAndShapesTheFitOfOneLength) {
  BatchController controller(1'000'000);
  controller.set_prior(2000, 0);  // 2 kB a token, nothing quadratic
  EXPECT_EQ(controller.max_batch(100, 64), 5u) << "before any batch: 200 kB a sequence";
  controller.observe(4, 100, 400 * 1000);  // measured: 1000 bytes a token
  EXPECT_EQ(controller.max_batch(100, 64), 10u) << "the prior scaled to the measurement";
  EXPECT_EQ(controller.max_batch(200, 64), 5u) << "linear, as the prior says; not 2";
  controller.observe(1, 1000, 3 * 1000 * 1000);  // a second length: the fit takes over
  EXPECT_GT(controller.predicted_rise(1, 1000), 2.9e6);
  EXPECT_EQ(controller.max_batch(1000, 64), 1u) << "3 MB a sequence: one at a time";
}

TEST(BatchControllerTest, AnOutOfMemoryErrorCapsThatShapeAtOnce) {
  BatchController controller(0);
  controller.out_of_memory(32, 256);
  EXPECT_EQ(controller.max_batch(256, 32), 16u);
  EXPECT_EQ(controller.max_batch(512, 32), 16u) << "longer batches are capped too";
  EXPECT_EQ(controller.max_batch(128, 32), 32u) << "shorter ones are not";
  EXPECT_EQ(controller.out_of_memory_count(), 1);
}

// A device whose cache can be counted.
class FakeMemory : public DeviceMemory {
 public:
  MemoryStats stats() const override { return stats_; }
  void reset_peak() override { stats_.peak_allocated = stats_.allocated; }
  void empty_cache() override {
    ++emptied;
    stats_.reserved = stats_.allocated;
  }
  std::string name() const override { return "fake"; }
  MemoryStats stats_;
  int emptied = 0;
};

TEST(CachePolicyTest, EmptiesWhenItsModeSays) {
  FakeMemory memory;
  MemoryConfig config;
  config.empty_cache = EmptyCache::kNever;
  CachePolicy never(config, memory);
  never.after_batch();
  never.after_request();
  EXPECT_EQ(memory.emptied, 0);

  config.empty_cache = EmptyCache::kAfterRequest;
  CachePolicy each(config, memory);
  each.after_batch();
  each.after_request();
  each.after_request();
  EXPECT_EQ(memory.emptied, 2);

  config.empty_cache = EmptyCache::kWhenUnusedAbove;
  config.empty_cache_above = 100;
  CachePolicy above(config, memory);
  memory.stats_ = {50, 50, 120, 120, 0, 0};
  above.after_batch();
  EXPECT_EQ(memory.emptied, 2) << "70 unused bytes are under the threshold";
  memory.stats_ = {50, 50, 200, 200, 0, 0};
  above.after_batch();
  EXPECT_EQ(memory.emptied, 3);
  EXPECT_EQ(above.times_emptied(), 1);
}

// An adapter that runs out of memory on batches larger than `fits`, and on any sequence longer
// than `longest`; a sequence's score is its length.
class TightAdapter : public FamilyAdapter {
 public:
  TightAdapter(size_t fits, size_t longest) : fits_(fits), longest_(longest) {}
  bool serves(TaskKind) const override { return true; }
  std::vector<PlannedSequence> plan(const TaskRecord&) const override { return {}; }
  std::vector<SequenceResult> run(const std::vector<const Encoding*>& batch, size_t) override {
    ++calls;
    if (batch.size() > fits_ || batch.front()->size() > longest_) {
      TORCH_CHECK_WITH(OutOfMemoryError, false, "CUDA out of memory. Tried to allocate 2 GiB");
    }
    std::vector<SequenceResult> results(batch.size());
    for (size_t i = 0; i < batch.size(); ++i)
      results[i].score = static_cast<float>(batch[i]->size());
    return results;
  }
  RecordResult finish(const TaskRecord&, const std::vector<PlannedSequence>&,
                      const std::vector<SequenceResult>&) const override {
    return {};
  }
  std::string describe() const override { return "tight"; }
  int calls = 0;

 private:
  size_t fits_, longest_;
};

std::vector<Encoding> sequences_of(std::vector<size_t> lengths) {
  std::vector<Encoding> sequences;
  for (size_t length : lengths) sequences.push_back({std::vector<int64_t>(length, 7), {}});
  return sequences;
}

TEST(GuardedRunnerTest, SplitsOnOutOfMemoryAndAnswersEverySequence) {
  FakeMemory memory;
  TightAdapter adapter(3, 1000);
  BatchController controller(0);
  CachePolicy cache(MemoryConfig{}, memory);
  GuardedRunner runner(adapter, memory, controller, cache, BatchLimits{});
  const auto sequences = sequences_of({90, 80, 70, 60, 50, 40, 30, 20, 10, 5});
  std::vector<const Encoding*> batch;
  for (const auto& sequence : sequences) batch.push_back(&sequence);
  const BatchOutcome outcome = runner.run(batch);
  for (size_t i = 0; i < batch.size(); ++i) {
    EXPECT_TRUE(outcome.errors[i].empty());
    EXPECT_EQ(outcome.results[i].score, static_cast<float>(sequences[i].size()))
        << "each sequence's own result, once";
  }
  EXPECT_GT(runner.stats().out_of_memory, 0);
  EXPECT_EQ(memory.emptied, runner.stats().out_of_memory) << "the cache is emptied on each";
  // The controller remembers: the next batch of this shape is split before it runs.
  const int calls = adapter.calls;
  const BatchOutcome again = runner.run(batch);
  EXPECT_EQ(runner.stats().splits_before, 1);
  EXPECT_LT(adapter.calls - calls, calls) << "fewer failed attempts the second time";
}

TEST(GuardedRunnerTest, ASequenceThatNeverFitsBecomesAnErrorAndTheRestRun) {
  FakeMemory memory;
  TightAdapter adapter(8, 60);
  BatchController controller(0);
  CachePolicy cache(MemoryConfig{}, memory);
  GuardedRunner runner(adapter, memory, controller, cache, BatchLimits{});
  const auto sequences = sequences_of({100, 50, 40, 30});
  std::vector<const Encoding*> batch;
  for (const auto& sequence : sequences) batch.push_back(&sequence);
  const BatchOutcome outcome = runner.run(batch);
  EXPECT_NE(outcome.errors[0].find("does not fit in memory even alone"), std::string::npos);
  for (size_t i = 1; i < batch.size(); ++i) {
    EXPECT_TRUE(outcome.errors[i].empty());
    EXPECT_EQ(outcome.results[i].score, static_cast<float>(sequences[i].size()));
  }
  EXPECT_EQ(runner.stats().failed_sequences, 1);
}

TEST(GuardedRunnerTest, OtherErrorsAreNotSwallowed) {
  class Broken : public TightAdapter {
   public:
    Broken() : TightAdapter(1, 1) {}
    std::vector<SequenceResult> run(const std::vector<const Encoding*>&, size_t) override {
      throw std::runtime_error("shape mismatch in the graph");
    }
  } adapter;
  FakeMemory memory;
  BatchController controller(0);
  CachePolicy cache(MemoryConfig{}, memory);
  GuardedRunner runner(adapter, memory, controller, cache, BatchLimits{});
  const auto sequences = sequences_of({5, 4});
  EXPECT_THROW(runner.run({&sequences[0], &sequences[1]}), std::runtime_error);
}

TEST(CudaMemoryTest, ReportsTheCachingAllocator) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  auto memory = make_cuda_memory(0, 0);
  memory->reset_peak();
  const int64_t before = memory->stats().allocated;
  {
    at::Tensor block = at::empty({64 << 20}, at::TensorOptions(at::kFloat).device(at::kCUDA));
    EXPECT_GE(memory->stats().allocated - before, int64_t{256} << 20);
  }
  EXPECT_GE(memory->stats().peak_allocated - before, int64_t{256} << 20);
  EXPECT_GT(memory->stats().reserved, 0);
  memory->empty_cache();
  EXPECT_EQ(memory->stats().reserved, memory->stats().allocated);
}

TEST(CudaMemoryTest, RecoversFromARealOutOfMemoryUnderAReducedFraction) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  auto memory = make_cuda_memory(0, int64_t{1} << 30);  // 1 GiB of the device
  try {
    at::Tensor too_big =
        at::empty({int64_t{1} << 29}, at::TensorOptions(at::kFloat).device(at::kCUDA));
    FAIL() << "2 GiB must not fit in a 1 GiB fraction";
  } catch (const std::exception& error) {
    EXPECT_TRUE(is_out_of_memory(error)) << error.what();
  }
  memory->empty_cache();
  EXPECT_NO_THROW(at::empty({int64_t{1} << 26}, at::TensorOptions(at::kFloat).device(at::kCUDA)));
}

}  // namespace
}  // namespace engine
