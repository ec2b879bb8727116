// Shared helpers of the test suites: fixture paths, temporary folders, files, and running the
// engine binary as a user would.
#pragma once

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/config/config.h"
#include "engine/jobs/batch_job.h"
#include "engine/runtime/family_adapter.h"
#include "engine/runtime/model_bundle.h"

namespace engine::testing {

// build/test_fixtures, made by tests/reference/make_fixtures.sh; ENGINE_TEST_FIXTURES names
// another folder (tools/test.sh's pass as on an AVX2-only CPU makes its own fixtures).
std::string fixture_path(const std::string& name);
// The thread count the suite runs with: ENGINE_TEST_THREADS, 2 when unset. The test processes
// use it, and job_config writes it as model.threads.
int test_threads();
std::string engine_binary();

// A fresh folder under the system's temp dir, removed with the object.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path(const std::string& name) const;
  const std::string& root() const { return root_; }

 private:
  std::string root_;
};

void write_file(const std::string& path, const std::string& text);
std::string read_file(const std::string& path);
std::vector<std::string> read_lines(const std::string& path);
nlohmann::json read_json(const std::string& path);

struct CommandResult {
  int status = -1;     // exit status
  std::string output;  // stdout and stderr together
};
// Runs `command` through /bin/sh.
CommandResult run_command(const std::string& command);
// Starts `command` through /bin/sh in the background (stdout and stderr to `log_file`) and returns
// its process id; `exec` in front of the command makes that the command's own.
int start_command(const std::string& command, const std::string& log_file);
// Waits for a process from start_command(); returns its exit status, or 128 + the signal.
int wait_command(int pid);

// A minimal rerank/score config over the given bundle, input and output (absolute paths), with
// model.threads: test_threads().
std::string job_config(const std::string& bundle, const std::string& input,
                       const std::string& output, const std::string& task = "rerank");

// One published layout of a parity test: its bundle fixture, the reference's JSON, and the
// name gtest gives the case (ParityCaseName).
struct ParityCase {
  const char* bundle;
  const char* reference;
  const char* name;
};
inline void PrintTo(const ParityCase& param, std::ostream* out) { *out << param.name; }
struct ParityCaseName {
  std::string operator()(const ::testing::TestParamInfo<ParityCase>& param) const {
    return param.param.name;
  }
};

// Runs the batch job in-process on `bundle` over `input_lines` (task `task`, with `overrides`),
// in `dir`, and returns the output lines parsed; `summary` receives the job's summary.
std::vector<nlohmann::json> run_job(const std::string& bundle,
                                    const std::vector<std::string>& input_lines,
                                    const std::string& task,
                                    const std::vector<std::string>& overrides, const TempDir& dir,
                                    JobSummary* summary = nullptr);

// The tiny XLM-R bundle loaded on the CPU with a cross-encoder adapter for `task`.
struct LoadedReranker {
  TaskConfig task;
  ModelBundle bundle;
  std::shared_ptr<const FamilyOptions> options;
  std::unique_ptr<FamilyAdapter> adapter;
};
std::unique_ptr<LoadedReranker> load_tiny_reranker(int max_length, bool normalize);

}  // namespace engine::testing
