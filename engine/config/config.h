// The typed configuration of a job, read from YAML (see configs/ and docs/config.md).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/config/config_node.h"

namespace engine {

enum class TaskKind { kRerank, kScore, kEmbed };

struct ModelConfig {
  std::string path;                      // the bundle directory
  std::string device = "auto";           // auto | cpu | cuda | cuda:N
  std::string dtype = "bundle";          // bundle (as exported) | fp32 | fp16 | bf16 | auto
  std::string embedding_dtype = "same";  // same | fp32 | fp16 | bf16 | int8: the word embeddings
  int threads = 0;                       // intra-op threads; 0 means all cores
  bool verify_checksum = true;  // compare model.pt with the manifest's SHA-256 before loading
  // onednn: on the CPU, each linear layer (with a GELU after it) runs as one oneDNN primitive
  // instead of MKL's sgemm; plain: the graph runs as exported. Both give a batch the same bits
  // whatever ran before it. fused: frozen at load (weights become constants) and, on the CPU in
  // fp32, run through oneDNN Graph partitions, but a batch's last bits depend on what the process
  // ran before it, so resumed and launched jobs are not byte-identical (docs/speed.md).
  std::string graph = "onednn";
  // none | int8: on the CPU with graph onednn, linear layers run in int8, weights quantised per
  // output channel at load, inputs per tensor at run time (engine/runtime/int8_linear.h).
  std::string quantize = "none";
  // model.options, passed on unread: the bundle's family reads it into its own typed options and
  // rejects keys it does not know (FamilyOptions in runtime/family_adapter.h). This config knows
  // no family.
  std::shared_ptr<const ConfigNode> family_options;
};

struct TaskConfig {
  TaskKind kind = TaskKind::kRerank;
  int max_length = 512;    // tokens per sequence, special tokens included
  bool normalize = false;  // sigmoid on the raw score
  int top_k = 0;           // 0 keeps every passage
};

struct BatchingConfig {
  int max_batch_size = 32;
  int64_t max_tokens = 16384;  // batch size x padded length
  int window = 8192;           // sequences sorted together by length before batching
  int pad_multiple = 8;        // padded lengths rounded up to a multiple of this
  // One forward pass's cost in padded tokens, for where batches are cut (length_bucketer.h);
  // -1 (auto): 64 on a CPU, max_tokens on a GPU (fewest batches first, then least padding).
  int64_t batch_cost_tokens = -1;
};

struct IoConfig {
  std::string input_path;
  std::string output_path;
  int64_t max_line_bytes = 64LL << 20;  // a longer input line is an error record
};

enum class EmptyCache { kNever, kAfterRequest, kWhenUnusedAbove };

struct MemoryConfig {
  int64_t limit = 0;           // host: bytes of CPU tensors; CUDA: caps the caching allocator
  int64_t budget = 0;          // bytes the batches may add; 0: limited by out-of-memory alone
  double budget_fraction = 0;  // or a fraction of the device's free memory at start
  EmptyCache empty_cache = EmptyCache::kNever;
  int64_t empty_cache_above = 1LL << 30;  // when_unused_above: reserved minus allocated
  bool warmup = false;  // run the longest batch shape once before the job and report it
};

// How a job is cut up, checkpointed and retried (docs/jobs.md).
struct JobConfig {
  // Input lines per block: the unit of sharding, checkpoints and retries. Batching windows never
  // straddle a block, so a block's output is the same however the input is split. 0 (auto, the
  // default): chosen from the input's line count (auto_block_lines in io/input_scan.h); a job
  // resolves it when it scans its input (plan_job in jobs/job.h).
  int64_t block_lines = 0;
  bool resume = true;   // go on from a checkpoint a killed run of the same job left
  int max_retries = 2;  // launch: runs of a block after the first, when its worker dies
};

// `engine serve` (docs/serving.md).
struct ServeConfig {
  std::string host = "127.0.0.1";
  int port = 8080;                      // 0: any free port (the log says which)
  double max_wait_ms = 5;               // a request waits at most this for others to batch with
  int64_t max_queue_sequences = 4096;   // sequences waiting for the model; past it: 429
  int max_client_batch_size = 512;      // texts (passages, inputs) in one request; past it: 422
  int64_t max_body_bytes = 16LL << 20;  // request body; past it: 413
  int http_threads = 128;               // requests handled at once (threads waiting on the model)
  int io_threads = 1;                   // threads serving every open connection
  int64_t max_connections = 10000;      // open at once; past it a new one gets 503
  double head_timeout_s = 10;           // a request's first byte to its last header
  double body_timeout_s = 30;           // the head to the body's last byte (and writing an answer)
  double idle_timeout_s = 60;           // a kept-alive connection between requests
};

struct LoggingConfig {
  std::string level = "info";
  double progress_interval_s = 5.0;
};

struct Config {
  std::string source_file;
  ModelConfig model;
  TaskConfig task;
  BatchingConfig batching;
  IoConfig io;
  MemoryConfig memory;
  JobConfig job;
  ServeConfig serve;
  LoggingConfig logging;
};

// What the config is for: a job needs input.path and output.path; `engine serve` reads neither
// (they may be left out; given, they are checked as for a job).
enum class ConfigUse { kJob, kServe };

// Reads and validates `file`, after applying each "key.path=value" override. Throws ConfigError
// with the file, line and key of the first problem.
Config load_config(const std::string& file, const std::vector<std::string>& overrides = {},
                   ConfigUse use = ConfigUse::kJob);

// Same, from YAML text; `file` only names the source in messages and anchors relative paths.
Config parse_config(const std::string& yaml_text, const std::string& file,
                    const std::vector<std::string>& overrides = {},
                    ConfigUse use = ConfigUse::kJob);

const char* task_name(TaskKind kind);

}  // namespace engine
