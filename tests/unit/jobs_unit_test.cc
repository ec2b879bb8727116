// The pieces of resumable and split jobs on their own: the input scan's blocks, reading one block,
// sharing blocks among ranks, checkpoints, resuming the writer, job identities, the cluster
// environment and the launcher's worker slots.
#include <gtest/gtest.h>

#include <tuple>

#include <cstdlib>
#include <filesystem>
#include <tuple>

#include "engine/common/cpu_features.h"
#include "engine/common/error.h"
#include "engine/common/sha256.h"
#include "engine/io/checkpoint.h"
#include "engine/io/input_scan.h"
#include "engine/io/jsonl_reader.h"
#include "engine/io/jsonl_writer.h"
#include "engine/jobs/batch_job.h"
#include "engine/jobs/cluster_env.h"
#include "engine/jobs/job_identity.h"
#include "engine/jobs/launcher.h"
#include "engine/runtime/devices.h"
#include "tests/support/test_support.h"

namespace engine {
namespace {

using testing::TempDir;

TEST(InputScanTest, BlocksStartEveryBlockLinesAtExactByteOffsets) {
  TempDir dir;
  // Lines of 2, 1, 4, 3, 1 and 6 bytes (breaks included); the last has no line break.
  const std::string text = "a\n\nbbb\ncc\n\nffffff";
  testing::write_file(dir.path("in.jsonl"), text);
  const InputScan scan = scan_input(dir.path("in.jsonl"), 2);
  EXPECT_EQ(scan.bytes, static_cast<int64_t>(text.size()));
  EXPECT_EQ(scan.lines, 6);
  EXPECT_EQ(scan.sha256, file_sha256(dir.path("in.jsonl")));
  ASSERT_EQ(scan.blocks.size(), 3u);
  const std::vector<InputRange> expected = {{1, 2, 0, 3}, {3, 2, 3, 10}, {5, 2, 10, 17}};
  for (size_t i = 0; i < expected.size(); ++i) {
    const InputRange& range = scan.blocks[i].range;
    EXPECT_EQ(scan.blocks[i].index, static_cast<int64_t>(i));
    EXPECT_EQ(range.first_line, expected[i].first_line) << "block " << i;
    EXPECT_EQ(range.lines, expected[i].lines) << "block " << i;
    EXPECT_EQ(range.begin, expected[i].begin) << "block " << i;
    EXPECT_EQ(range.end, expected[i].end) << "block " << i;
  }
  // Reading one block gives its lines, numbered as in the whole file.
  JsonlReader reader(dir.path("in.jsonl"), 1024, scan.blocks[1].range);
  InputLine line;
  ASSERT_TRUE(reader.next(line));
  EXPECT_EQ(line.number, 3);
  EXPECT_EQ(line.text, "bbb");
  ASSERT_TRUE(reader.next(line));
  EXPECT_EQ(line.number, 4);
  EXPECT_EQ(line.text, "cc");
  EXPECT_EQ(reader.offset(), 10);
  EXPECT_FALSE(reader.next(line)) << "the block ends at its last line";
}

// job.block_lines auto: about 64 blocks of a multiple of 8 lines, from the line count alone, so
// that two workers (or eight GPUs) all get blocks of a small input and a resumed job with any
// number of workers makes the same ones.
TEST(InputScanTest, AutoBlocksComeFromTheLineCountAlone) {
  EXPECT_EQ(auto_block_lines(0), 8);
  EXPECT_EQ(auto_block_lines(3), 8);
  EXPECT_EQ(auto_block_lines(200), 8);        // 25 blocks
  EXPECT_EQ(auto_block_lines(1500), 24);      // 63 blocks
  EXPECT_EQ(auto_block_lines(4096), 64);      // 64 blocks
  EXPECT_EQ(auto_block_lines(4097), 72);      // 57 blocks
  EXPECT_EQ(auto_block_lines(100000), 1568);  // 64 blocks
  EXPECT_EQ(auto_block_lines(10000000), 65536) << "at most 8192 units of 8 lines";
  TempDir dir;
  for (const int lines : {3, 200, 1500, 4097}) {
    std::string text;
    for (int i = 0; i < lines; ++i) text += "{\"line\": " + std::to_string(i) + "}\n";
    testing::write_file(dir.path("in.jsonl"), text);
    const InputScan automatic = scan_input(dir.path("in.jsonl"), 0);
    const InputScan fixed = scan_input(dir.path("in.jsonl"), auto_block_lines(lines));
    EXPECT_EQ(automatic.block_lines, auto_block_lines(lines));
    ASSERT_EQ(automatic.blocks.size(), fixed.blocks.size()) << lines;
    EXPECT_EQ(static_cast<int64_t>(automatic.blocks.size()),
              (lines + automatic.block_lines - 1) / automatic.block_lines);
    for (size_t i = 0; i < fixed.blocks.size(); ++i) {
      const InputRange& a = automatic.blocks[i].range;
      const InputRange& b = fixed.blocks[i].range;
      EXPECT_EQ(automatic.blocks[i].index, static_cast<int64_t>(i));
      EXPECT_EQ(std::make_tuple(a.first_line, a.lines, a.begin, a.end),
                std::make_tuple(b.first_line, b.lines, b.begin, b.end))
          << lines << " lines, block " << i;
    }
    EXPECT_EQ(automatic.sha256, fixed.sha256);
  }
}

TEST(InputScanTest, AFinalLineBreakMakesNoExtraLineAndAnEmptyFileNoBlock) {
  TempDir dir;
  testing::write_file(dir.path("a.jsonl"), "x\ny\nz\n");
  const InputScan scan = scan_input(dir.path("a.jsonl"), 2);
  EXPECT_EQ(scan.lines, 3);
  ASSERT_EQ(scan.blocks.size(), 2u);
  EXPECT_EQ(scan.blocks[1].range.lines, 1);
  EXPECT_EQ(scan.blocks[1].range.end, 6);
  testing::write_file(dir.path("empty.jsonl"), "");
  const InputScan empty = scan_input(dir.path("empty.jsonl"), 2);
  EXPECT_EQ(empty.lines, 0);
  EXPECT_TRUE(empty.blocks.empty());
  EXPECT_THROW(scan_input(dir.path("missing.jsonl"), 2), ConfigError);
}

TEST(InputScanTest, RanksShareTheBlocksContiguouslyAndCoverEachOnce) {
  std::vector<InputBlock> blocks(10);
  for (size_t i = 0; i < blocks.size(); ++i) blocks[i].index = static_cast<int64_t>(i);
  for (int world : {1, 3, 4, 10, 13}) {
    int64_t next = 0;
    for (int rank = 0; rank < world; ++rank) {
      const auto mine = blocks_of_rank(blocks, rank, world);
      EXPECT_LE(mine.size(), 10u / world + 1) << "as even as whole blocks allow";
      for (const InputBlock& block : mine) EXPECT_EQ(block.index, next++);
    }
    EXPECT_EQ(next, 10) << "world size " << world;
  }
}

Checkpoint sample_checkpoint() {
  Checkpoint checkpoint;
  checkpoint.identity = {{"input", {{"sha256", "abc"}}}};
  checkpoint.numerics = {{"device", "cpu"}, {"cpu_isa", "avx2"}, {"threads", 3}};
  checkpoint.range = {101, 50, 4000, 6000};
  checkpoint.next_line = 121;
  checkpoint.next_offset = 4800;
  checkpoint.output_bytes = 777;
  checkpoint.records = 20;
  checkpoint.error_records = 2;
  checkpoint.pairs = 18;
  return checkpoint;
}

TEST(CheckpointTest, RoundTripsAndIsReplacedAtomically) {
  TempDir dir;
  const std::string path = dir.path("job.checkpoint");
  EXPECT_FALSE(read_checkpoint(path).has_value());
  write_checkpoint(path, sample_checkpoint());
  Checkpoint later = sample_checkpoint();
  later.next_line = 131;
  later.records = 30;
  write_checkpoint(path, later);
  const auto read = read_checkpoint(path);
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->identity, later.identity);
  EXPECT_EQ(read->numerics, later.numerics);
  EXPECT_EQ(read->range.first_line, 101);
  EXPECT_EQ(read->range.end, 6000);
  EXPECT_EQ(read->next_line, 131);
  EXPECT_EQ(read->next_offset, 4800);
  EXPECT_EQ(read->output_bytes, 777);
  EXPECT_EQ(read->records, 30);
  EXPECT_EQ(read->error_records, 2);
  EXPECT_EQ(read->pairs, 18);
  size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.root()))
    files += !!entry.is_regular_file();
  EXPECT_EQ(files, 1u) << "nothing is left beside it";
}

TEST(CheckpointTest, ACorruptCheckpointIsRefusedNamingTheFile) {
  TempDir dir;
  const std::string path = dir.path("job.checkpoint");
  const auto refused = [&](const std::string& text, const std::string& why) {
    testing::write_file(path, text);
    try {
      read_checkpoint(path);
      ADD_FAILURE() << "accepted: " << text;
    } catch (const ConfigError& error) {
      const std::string message = error.what();
      EXPECT_NE(message.find(path), std::string::npos) << message;
      EXPECT_NE(message.find(why), std::string::npos) << message;
    }
  };
  refused("{\"checkpoint_format\": 1, \"next_li", "not JSON");
  refused("{\"checkpoint_format\": 1}", "missing or mistyped field");
  refused("{\"checkpoint_format\": 9}", "format 9");
  write_checkpoint(path, sample_checkpoint());
  nlohmann::json json = nlohmann::json::parse(testing::read_file(path));
  json["records"] = 5;  // lines 101..120 are 20 records, not 5
  refused(json.dump(), "positions do not fit together");
}

TEST(JsonlWriterTest, AResumedWriterDropsWhatCameAfterTheCheckpoint) {
  TempDir dir;
  const std::string path = dir.path("out.jsonl");
  int64_t synced = 0;
  {
    JsonlWriter writer(path);
    writer.write({{"id", 1}});
    writer.write({{"id", 2}});
    writer.sync();
    synced = writer.bytes_written();
    writer.write({{"id", 3}});  // written after the checkpoint: the crash loses it
    writer.sync();
  }
  {
    JsonlWriter writer(path, synced);
    EXPECT_EQ(writer.bytes_written(), synced);
    writer.write({{"id", 3}});
    writer.commit();
  }
  EXPECT_EQ(testing::read_file(path), "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n");
  testing::write_file(JsonlWriter::partial_path(path), "{\"id\":1}\n");
  EXPECT_THROW(JsonlWriter(path, synced), ConfigError) << "a partial file shorter than recorded";
}

TEST(JobIdentityTest, TheDifferenceNamesEachChangedKey) {
  const nlohmann::json before = {{"settings", {{"task.top_k", 0}, {"task.kind", "rerank"}}},
                                 {"input", {{"sha256", "1318f6eca2ef0123456789"}}}};
  EXPECT_EQ(identity_difference(before, before), "");
  nlohmann::json after = before;
  after["settings"]["task.top_k"] = 5;
  after["input"]["sha256"] = "f2468a5b826e0123456789";
  EXPECT_EQ(identity_difference(before, after),
            "input.sha256 (was 1318f6eca2ef…, now f2468a5b826e…), task.top_k (was 0, now 5)");
}

// The numerics a run computes with: on a CPU its class and thread count, which can move the last
// digits; a checkpoint from before they were recorded differs from nothing.
TEST(JobIdentityTest, NumericsNameTheCpuClassAndThreadsAndTheirDifference) {
  const nlohmann::json one = run_numerics(c10::Device(c10::kCPU), 1);
  EXPECT_EQ(one.at("device"), "cpu");
  EXPECT_EQ(one.at("cpu_isa"), cpu_isa_name());
  EXPECT_EQ(one.at("threads"), 1);
  EXPECT_EQ(numerics_difference(one, one), "");
  EXPECT_EQ(numerics_difference(one, run_numerics(c10::Device(c10::kCPU), 4)),
            "threads (was 1, now 4)");
  EXPECT_EQ(numerics_difference(nlohmann::json(), one), "") << "not recorded: nothing to compare";
  const nlohmann::json gpu = run_numerics(c10::Device(c10::kCUDA, 0), 4);
  EXPECT_EQ(gpu.at("device"), "cuda");
  EXPECT_FALSE(gpu.contains("threads")) << "CPU threads do not change what a GPU computes";
}

TEST(LauncherTest, TheThreadRuleIsOneForProcessesWorkersAndRanks) {
  EXPECT_EQ(thread_count(3), 3) << "model.threads set";
  EXPECT_EQ(thread_count(3, 8), 3) << "set, whoever shares the CPUs";
  EXPECT_EQ(thread_count(0), available_cpus());
  EXPECT_EQ(thread_count(0, 2), std::max(1, available_cpus() / 2));
  EXPECT_EQ(thread_count(0, 10000), 1) << "at least one";
}

TEST(JobSummaryTest, PiecesAddUpAndSurviveTheirJson) {
  JobSummary part;
  part.records = 64;
  part.error_records = 2;
  part.pairs = 62;
  part.batches = 3;
  part.seconds = 1.5;
  part.model_seconds = 1.25;
  part.resumed_records = 10;
  part.peak_resident = 300;
  part.memory.peak_allocated = 1000;
  part.memory.allocated = 7;
  part.numerics = {{"device", "cpu"}, {"threads", 2}};
  const JobSummary copy = summary_from_json(summary_json(part));
  EXPECT_EQ(copy.records, 64);
  EXPECT_EQ(copy.error_records, 2);
  EXPECT_EQ(copy.pairs, 62);
  EXPECT_EQ(copy.batches, 3);
  EXPECT_DOUBLE_EQ(copy.seconds, 1.5);
  EXPECT_DOUBLE_EQ(copy.model_seconds, 1.25);
  EXPECT_EQ(copy.resumed_records, 10);
  EXPECT_EQ(copy.peak_resident, 300);
  EXPECT_EQ(copy.memory.peak_allocated, 1000);
  EXPECT_EQ(copy.memory.allocated, 7);
  EXPECT_EQ(copy.numerics, part.numerics);

  JobSummary total;
  add_summary(total, part);
  JobSummary other = part;
  other.memory.peak_allocated = 400;
  other.peak_resident = 500;
  add_summary(total, other);
  EXPECT_EQ(total.records, 128);
  EXPECT_EQ(total.error_records, 4);
  EXPECT_DOUBLE_EQ(total.seconds, 3.0);
  EXPECT_DOUBLE_EQ(total.model_seconds, 2.5);
  EXPECT_EQ(total.memory.peak_allocated, 1000) << "peaks: the larger";
  EXPECT_EQ(total.peak_resident, 500);
}

// Sets environment variables for one test and restores them after.
class ScopedEnvironment {
 public:
  explicit ScopedEnvironment(std::vector<std::pair<std::string, std::string>> variables) {
    for (const char* name :
         {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "SLURM_STEP_ID", "SLURM_STEPID",
          "SLURM_PROCID", "SLURM_NTASKS", "SLURM_STEP_NUM_TASKS", "SLURM_NPROCS", "SLURM_LOCALID",
          "SLURM_STEP_TASKS_PER_NODE"}) {
      if (const char* value = std::getenv(name)) saved_.emplace_back(name, value);
      unsetenv(name);
      names_.push_back(name);
    }
    for (const auto& [name, value] : variables) setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnvironment() {
    for (const std::string& name : names_) unsetenv(name.c_str());
    for (const auto& [name, value] : saved_) setenv(name.c_str(), value.c_str(), 1);
  }

 private:
  std::vector<std::string> names_;
  std::vector<std::pair<std::string, std::string>> saved_;
};

TEST(ClusterEnvTest, ReadsTorchrunAndSlurmStepsAndNotABatchScript) {
  {
    ScopedEnvironment env({});
    EXPECT_FALSE(detect_cluster_rank().distributed());
  }
  {
    ScopedEnvironment env(
        {{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "4"}});
    const ClusterRank rank = detect_cluster_rank();
    EXPECT_EQ(rank.source, "torchrun");
    EXPECT_EQ(rank.rank, 3);
    EXPECT_EQ(rank.world_size, 8);
    EXPECT_EQ(rank.local_rank, 1);
    EXPECT_EQ(rank.local_world_size, 4);
  }
  {
    ScopedEnvironment env({{"SLURM_STEP_ID", "0"},
                           {"SLURM_PROCID", "1"},
                           {"SLURM_NTASKS", "2"},
                           {"SLURM_LOCALID", "1"},
                           {"SLURM_STEP_TASKS_PER_NODE", "2"}});
    const ClusterRank rank = detect_cluster_rank();
    EXPECT_EQ(rank.source, "slurm");
    EXPECT_EQ(rank.rank, 1);
    EXPECT_EQ(rank.world_size, 2);
    EXPECT_EQ(rank.local_world_size, 2);
  }
  {
    // sbatch's own shell: an allocation of 4 tasks, but no step.
    ScopedEnvironment env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}});
    EXPECT_FALSE(detect_cluster_rank().distributed());
  }
}

TEST(ClusterEnvTest, MalformedOrOutOfRangeVariablesAreRefusedByName) {
  const auto refused = [](std::vector<std::pair<std::string, std::string>> variables,
                          const std::string& name) {
    ScopedEnvironment env(std::move(variables));
    try {
      detect_cluster_rank();
      ADD_FAILURE() << "accepted";
    } catch (const ConfigError& error) {
      EXPECT_NE(std::string(error.what()).find(name), std::string::npos) << error.what();
    }
  };
  refused({{"RANK", "two"}, {"WORLD_SIZE", "4"}}, "RANK='two'");
  refused({{"RANK", "4"}, {"WORLD_SIZE", "4"}}, "RANK is 4 but WORLD_SIZE is 4");
  refused({{"SLURM_STEP_ID", "0"}, {"SLURM_PROCID", "2"}, {"SLURM_NTASKS", "2"}},
          "SLURM_PROCID is 2");
}

TEST(LauncherTest, DevicesBecomeWorkerSlots) {
  const int cpus = available_cpus();
  const auto two = plan_workers("cpu:2", 0);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].name, "cpu:0");
  EXPECT_EQ(two[1].threads, std::max(1, cpus / 2)) << "CPU workers split the cores";
  EXPECT_EQ(two[0].gpu, -1);
  if (cpus >= 2) {
    EXPECT_EQ(two[0].cpus.size(), static_cast<size_t>(cpus / 2)) << "pinned to cores of its own";
    EXPECT_NE(two[0].cpus, two[1].cpus);
  }
  EXPECT_EQ(plan_workers("cpu", 3).front().threads, 3) << "model.threads fixes each worker's";
  const auto gpus = plan_workers("0,cuda:2", 0);
  ASSERT_EQ(gpus.size(), 2u);
  EXPECT_EQ(gpus[1].gpu, 2);
  EXPECT_EQ(gpus[1].name, "cuda:2");
  EXPECT_TRUE(gpus[0].cpus.empty());
  for (const char* bad : {"gpu", "cpu:0", "cpu:x", "0,0", ""}) {
    EXPECT_THROW(plan_workers(bad, 0), ConfigError) << bad;
  }
}

}  // namespace
}  // namespace engine
