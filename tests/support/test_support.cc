#include "tests/support/test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "engine/jobs/job.h"
#include "engine/memory/device_memory.h"
#include "models/registry.h"

namespace engine::testing {

namespace {

// The suite's intra-op thread count for LibTorch in the test processes themselves, set before any
// test runs; the configs the tests write (job_config) name the same count.
class ThreadCountEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { at::set_num_threads(test_threads()); }
};

const ::testing::Environment* const thread_count_environment =
    ::testing::AddGlobalTestEnvironment(new ThreadCountEnvironment);

}  // namespace

std::string fixture_path(const std::string& name) {
  const char* forced = std::getenv("ENGINE_TEST_FIXTURES");
  const std::string folder = forced != nullptr && *forced != '\0' ? forced : ENGINE_FIXTURE_DIR;
  return (std::filesystem::path(folder) / name).string();
}

int test_threads() {
  const char* forced = std::getenv("ENGINE_TEST_THREADS");
  if (forced == nullptr || *forced == '\0') return 2;
  const int threads = std::atoi(forced);
  if (threads < 1) throw std::runtime_error("ENGINE_TEST_THREADS must be a positive count");
  return threads;
}

std::string engine_binary() { return ENGINE_BINARY; }

TempDir::TempDir() {
  std::random_device random;
  const auto base = std::filesystem::temp_directory_path();
  do {
    root_ = (base / fmt::format("engine-test-{:08x}", random())).string();
  } while (std::filesystem::exists(root_));
  std::filesystem::create_directories(root_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(root_, ignored);
}

std::string TempDir::path(const std::string& name) const {
  return (std::filesystem::path(root_) / name).string();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream stream(path, std::ios::binary);
  stream << text;
  if (!stream) throw std::runtime_error("cannot write " + path);
}

std::string read_file(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw std::runtime_error("cannot read " + path);
  std::stringstream text;
  text << stream.rdbuf();
  return text.str();
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream stream(path, std::ios::binary);
  if (!stream) throw std::runtime_error("cannot read " + path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_file(path)); }

CommandResult run_command(const std::string& command) {
  CommandResult result;
  std::FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe) throw std::runtime_error("cannot run " + command);
  std::array<char, 4096> buffer;
  size_t read = 0;
  while ((read = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
    result.output.append(buffer.data(), read);
  }
  const int status = pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

int start_command(const std::string& command, const std::string& log_file) {
  const std::string shell = command + " >" + log_file + " 2>&1";
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("cannot fork");
  if (pid == 0) {
    execl("/bin/sh", "sh", "-c", shell.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

int wait_command(int pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) throw std::runtime_error("waitpid failed");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string job_config(const std::string& bundle, const std::string& input,
                       const std::string& output, const std::string& task) {
  return fmt::format(
      "model:\n  path: {}\n  device: cpu\n  threads: {}\n"
      "task:\n  kind: {}\n"
      "input:\n  path: {}\n"
      "output:\n  path: {}\n"
      "logging:\n  level: warn\n",
      bundle, test_threads(), task, input, output);
}

std::vector<nlohmann::json> run_job(const std::string& bundle,
                                    const std::vector<std::string>& input_lines,
                                    const std::string& task,
                                    const std::vector<std::string>& overrides, const TempDir& dir,
                                    JobSummary* summary) {
  models::register_model_families();
  std::string input;
  for (const auto& line : input_lines) input += line + "\n";
  write_file(dir.path("in.jsonl"), input);
  write_file(dir.path("job.yaml"),
             job_config(bundle, dir.path("in.jsonl"), dir.path("out.jsonl"), task));
  // As `engine --config job.yaml` runs it (engine/jobs/job.h).
  OpenJob job = open_job({dir.path("job.yaml"), overrides});
  const JobSummary result = engine::run_job(job.plan, *job.runtime);
  if (summary) *summary = result;
  std::vector<nlohmann::json> outputs;
  for (const auto& line : read_lines(dir.path("out.jsonl"))) {
    outputs.push_back(nlohmann::json::parse(line));
  }
  return outputs;
}

std::unique_ptr<LoadedReranker> load_tiny_reranker(int max_length, bool normalize) {
  models::register_model_families();
  auto loaded = std::make_unique<LoadedReranker>();
  loaded->task.kind = TaskKind::kScore;
  loaded->task.max_length = max_length;
  loaded->task.normalize = normalize;
  ModelConfig model;
  model.path = fixture_path("xlmr_tiny");
  model.device = "cpu";
  loaded->bundle = load_bundle(model);
  loaded->options = read_family_options(
      loaded->bundle.manifest.family,
      {ConfigNode::empty("model.options"), loaded->bundle.manifest, loaded->task});
  loaded->adapter = make_adapter(loaded->bundle.manifest.family,
                                 {loaded->bundle, loaded->task, *loaded->options});
  return loaded;
}

}  // namespace engine::testing
