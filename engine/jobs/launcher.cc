#include "engine/jobs/launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "engine/common/error.h"
#include "engine/jobs/cluster_env.h"
#include "engine/jobs/progress.h"
#include "engine/jobs/worker_protocol.h"
#include "engine/runtime/devices.h"

extern char** environ;

namespace engine {
namespace {

std::vector<WorkerSlot> cpu_slots(int count, int threads) {
  check<ConfigError>(count >= 1 && count <= 1024,
                     "--devices cpu:{}: the number of CPU workers "
                     "must be from 1 to 1024",
                     count);
  const std::vector<int> cores = available_cpu_list();
  const int each = thread_count(threads, count);
  // Pinned to cores of their own when there are enough, so that their threads do not contend.
  const bool pin = !cores.empty() && static_cast<size_t>(count * each) <= cores.size();
  std::vector<WorkerSlot> slots;
  for (int i = 0; i < count; ++i) {
    WorkerSlot slot;
    slot.name = fmt::format("cpu:{}", i);
    slot.threads = each;
    if (pin) slot.cpus.assign(cores.begin() + i * each, cores.begin() + (i + 1) * each);
    slots.push_back(std::move(slot));
  }
  return slots;
}

std::vector<WorkerSlot> gpu_slots(const std::vector<int>& gpus, int threads) {
  const int each = thread_count(threads, static_cast<int>(gpus.size()));
  std::vector<WorkerSlot> slots;
  for (int gpu : gpus) {
    WorkerSlot slot;
    slot.name = fmt::format("cuda:{}", gpu);
    slot.gpu = gpu;
    slot.threads = each;
    slots.push_back(std::move(slot));
  }
  return slots;
}

int parse_count(const std::string& text, const std::string& devices) {
  char* end = nullptr;
  const long value = std::strtol(text.c_str(), &end, 10);
  check<ConfigError>(!text.empty() && *end == '\0' && value >= 0 && value < (1 << 20),
                     "--devices '{}': '{}' is not a number; expected auto, cpu, cpu:N or GPU "
                     "indices such as 0,1,2,3",
                     devices, text);
  return static_cast<int>(value);
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    std::string text = fmt::format("was killed by signal {} ({})", signal, strsignal(signal));
    if (signal == SIGKILL) text += ": by a user, or by the kernel when memory ran out";
    return text;
  }
  return fmt::format("stopped (status {})", status);
}

// One worker process and the pipes to it.
struct Worker {
  size_t slot = 0;
  pid_t pid = -1;
  int to_worker = -1;
  int from_worker = -1;
  LineBuffer received;
  std::string protocol_error;  // why the launcher stopped it, when a message was bad
  bool ready = false;
  std::optional<size_t> block;  // index into the blocks being run
  int64_t block_records = 0;    // of that block, written so far
};

class Supervisor {
 public:
  Supervisor(const LaunchOptions& options, const std::vector<InputBlock>& blocks)
      : options_(options),
        blocks_(blocks),
        attempts_(blocks.size(), 0),
        failed_starts_(options.slots.size(), 0),
        progress_(options.total_lines - options.done_lines, options.progress_interval_s) {
    for (size_t i = 0; i < blocks.size(); ++i) queue_.push_back(i);
  }

  ~Supervisor() { stop_all(/*kill=*/true); }

  JobSummary run() {
    ::signal(SIGPIPE, SIG_IGN);  // a worker that died must not take the launcher with it
    const auto start = std::chrono::steady_clock::now();
    const size_t wanted = std::min(options_.slots.size(), blocks_.size());
    for (size_t slot = 0; slot < wanted; ++slot) start_worker(slot);
    while (completed_ < blocks_.size()) {
      check<std::runtime_error>(!workers_.empty(),
                                "every worker slot failed to start; see the messages above");
      wait_for_messages();
      report_progress();
    }
    stop_all(/*kill=*/false);
    total_.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return total_;
  }

 private:
  void start_worker(size_t slot) {
    const WorkerSlot& where = options_.slots[slot];
    int down[2], up[2];
    check<std::runtime_error>(pipe2(down, O_CLOEXEC) == 0 && pipe2(up, O_CLOEXEC) == 0,
                              "cannot create a pipe: {}", std::strerror(errno));
    std::vector<std::string> args = {options_.engine_binary, "worker",    "--config",
                                     options_.config_file,   "--log-tag", where.name};
    for (const std::string& setting : options_.overrides)
      args.insert(args.end(), {"--set", setting});
    args.insert(args.end(), {"--set", where.gpu >= 0 ? "model.device=cuda:0" : "model.device=cpu",
                             "--set", fmt::format("model.threads={}", where.threads), "--set",
                             "logging.progress_interval_s=0"});
    std::vector<std::string> environment;
    for (char** variable = environ; *variable != nullptr; ++variable) {
      if (std::strncmp(*variable, "CUDA_VISIBLE_DEVICES=", 21) != 0) {
        environment.emplace_back(*variable);
      }
    }
    if (where.gpu >= 0) environment.push_back(fmt::format("CUDA_VISIBLE_DEVICES={}", where.gpu));
    std::vector<char*> argv, envp;
    for (std::string& arg : args) argv.push_back(arg.data());
    for (std::string& variable : environment) envp.push_back(variable.data());
    argv.push_back(nullptr);
    envp.push_back(nullptr);
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    for (int cpu : where.cpus) CPU_SET(cpu, &cpus);
    const pid_t parent = getpid();

    const pid_t pid = fork();
    check<std::runtime_error>(pid >= 0, "cannot start a worker: {}", std::strerror(errno));
    if (pid == 0) {
      // The child: only async-signal-safe calls until exec.
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // a launcher that dies takes its workers with it
      if (getppid() != parent) _exit(127);
      dup2(down[0], STDIN_FILENO);
      dup2(up[1], STDOUT_FILENO);
      if (!where.cpus.empty()) sched_setaffinity(0, sizeof(cpus), &cpus);
      execve(argv[0], argv.data(), envp.data());
      _exit(127);
    }
    ::close(down[0]);
    ::close(up[1]);
    Worker worker;
    worker.slot = slot;
    worker.pid = pid;
    worker.to_worker = down[1];
    worker.from_worker = up[0];
    spdlog::info(
        "worker {} (pid {}) started, {} thread(s){}", where.name, pid, where.threads,
        where.cpus.empty() ? "" : fmt::format(" pinned to cores {}", fmt::join(where.cpus, ",")));
    workers_.push_back(std::move(worker));
  }

  void wait_for_messages() {
    std::vector<pollfd> fds;
    for (const Worker& worker : workers_) fds.push_back({worker.from_worker, POLLIN, 0});
    const int timeout_ms = options_.progress_interval_s > 0
                               ? static_cast<int>(options_.progress_interval_s * 1000)
                               : 1000;
    if (::poll(fds.data(), fds.size(), std::max(timeout_ms, 100)) < 0) {
      check<std::runtime_error>(errno == EINTR, "poll failed: {}", std::strerror(errno));
      return;
    }
    // Back to front: a worker that ended is removed from workers_ as it is handled.
    for (size_t i = fds.size(); i-- > 0;) {
      if (fds[i].revents == 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(fds[i].fd, buffer, sizeof(buffer));
      if (n > 0) {
        receive(workers_[i], buffer, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        if (n == 0 && workers_[i].protocol_error.empty()) {
          try {
            workers_[i].received.finish();
          } catch (const ProtocolError& error) {
            workers_[i].protocol_error = error.what();
          }
        }
        worker_ended(i);
      }
    }
  }

  // A worker that sends a message that does not parse, or one out of turn, is stopped; its end
  // is then handled as a crash: its block goes back to the queue and counts as a failed run.
  void receive(Worker& worker, const char* data, size_t size) {
    if (!worker.protocol_error.empty()) return;  // killed, its end not yet seen
    try {
      worker.received.append(data, size);
      while (std::optional<std::string> line = worker.received.next_line()) {
        handle(worker, decode_worker_message(*line));
      }
    } catch (const ProtocolError& error) {
      worker.protocol_error = error.what();
      spdlog::error("worker {} broke the launcher's protocol: {}; stopping it",
                    options_.slots[worker.slot].name, worker.protocol_error);
      ::kill(worker.pid, SIGKILL);
    }
  }

  void handle(Worker& worker, const WorkerMessage& message) {
    std::optional<int64_t> running;
    if (worker.block) running = blocks_[*worker.block].index;
    expect_block(message, running);
    switch (message.kind) {
      case WorkerMessage::Kind::kReady:
        check<ProtocolError>(!worker.ready, "a second 'ready'");
        worker.ready = true;
        failed_starts_[worker.slot] = 0;
        assign(worker);
        break;
      case WorkerMessage::Kind::kProgress:
        worker.block_records = message.records;
        break;
      case WorkerMessage::Kind::kDone:
        add_summary(total_, message.summary);
        done_lines_ += blocks_[*worker.block].range.lines;
        ++completed_;
        worker.block.reset();
        worker.block_records = 0;
        assign(worker);
        break;
    }
  }

  // Hands the worker the next block, or lets it go when none is left.
  void assign(Worker& worker) {
    if (queue_.empty()) {
      if (worker.to_worker >= 0) ::close(worker.to_worker);
      worker.to_worker = -1;
      return;
    }
    const size_t next = queue_.front();
    queue_.pop_front();
    const std::string message = encode_block(blocks_[next]);
    worker.block = next;
    worker.block_records = 0;
    ++attempts_[next];
    // A worker that died meanwhile shows as the end of its pipe, and the block goes back then.
    if (::write(worker.to_worker, message.data(), message.size()) < 0) {
      spdlog::debug("worker {}: {}", options_.slots[worker.slot].name, std::strerror(errno));
    }
  }

  void worker_ended(size_t position) {
    Worker worker = std::move(workers_[position]);
    workers_.erase(workers_.begin() + static_cast<long>(position));
    if (worker.to_worker >= 0) ::close(worker.to_worker);
    ::close(worker.from_worker);
    int status = 0;
    ::waitpid(worker.pid, &status, 0);
    const WorkerSlot& slot = options_.slots[worker.slot];
    if (WIFEXITED(status) && WEXITSTATUS(status) == 2) {
      throw ConfigError(
          fmt::format("worker {} stopped on a configuration error (its message is "
                      "above)",
                      slot.name));
    }
    const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0 && !worker.block &&
                       worker.protocol_error.empty();
    if (clean) return;
    const std::string how = worker.protocol_error.empty()
                                ? describe_exit(status)
                                : fmt::format("broke the protocol ({})", worker.protocol_error);
    if (worker.block) {
      const size_t block = *worker.block;
      const InputRange& range = blocks_[block].range;
      check<std::runtime_error>(
          attempts_[block] <= options_.max_retries,
          "block {} (input lines {}-{}) failed {} times, the last time because its worker {} {}; "
          "giving up (job.max_retries is {}). Its part and checkpoint are kept: fix the cause "
          "and launch again to go on",
          blocks_[block].index, range.first_line, range.last_line(), attempts_[block], slot.name,
          how, options_.max_retries);
      spdlog::warn(
          "worker {} {} while running block {} (lines {}-{}, {} records written); the "
          "block goes to the next free worker and resumes from its checkpoint",
          slot.name, how, blocks_[block].index, range.first_line, range.last_line(),
          worker.block_records);
      queue_.push_front(block);
      ++restarts_;
    } else if (!worker.ready) {
      ++failed_starts_[worker.slot];
      spdlog::warn("worker {} {} before it was ready", slot.name, how);
      if (failed_starts_[worker.slot] > options_.max_retries) {
        spdlog::error("worker slot {} failed to start {} times; not using it again", slot.name,
                      failed_starts_[worker.slot]);
        return;
      }
    }
    if (!queue_.empty()) start_worker(worker.slot);
    // An idle worker takes the block back at once.
    for (Worker& other : workers_) {
      if (other.ready && !other.block && other.to_worker >= 0) assign(other);
    }
  }

  // One line for the whole launch: records of completed blocks and of the blocks under way.
  void report_progress() {
    double done = static_cast<double>(done_lines_);
    size_t busy = 0;
    for (const Worker& worker : workers_) {
      if (!worker.block) continue;
      done += static_cast<double>(worker.block_records);
      ++busy;
    }
    progress_.update(
        done,
        fmt::format("; blocks {} of {} done, {} under way{}", completed_, blocks_.size(), busy,
                    restarts_ > 0 ? fmt::format(", {} restarts", restarts_) : std::string()));
  }

  // Lets the workers finish (their input ends), or, after a failure, kills them.
  void stop_all(bool kill) {
    for (Worker& worker : workers_) {
      if (worker.to_worker >= 0) ::close(worker.to_worker);
      worker.to_worker = -1;
      if (kill) ::kill(worker.pid, SIGKILL);
    }
    for (Worker& worker : workers_) {
      int status = 0;
      ::waitpid(worker.pid, &status, 0);
      ::close(worker.from_worker);
    }
    workers_.clear();
  }

  const LaunchOptions& options_;
  const std::vector<InputBlock>& blocks_;
  std::deque<size_t> queue_;
  std::vector<int> attempts_;
  std::vector<int> failed_starts_;
  std::vector<Worker> workers_;
  ProgressReporter progress_;
  JobSummary total_;
  size_t completed_ = 0;
  int64_t done_lines_ = 0;
  int restarts_ = 0;
};

}  // namespace

std::vector<WorkerSlot> plan_workers(const std::string& devices, int threads) {
  if (devices == "cpu") return cpu_slots(1, threads);
  if (devices.rfind("cpu:", 0) == 0)
    return cpu_slots(parse_count(devices.substr(4), devices), threads);
  std::vector<int> gpus;
  if (devices == "auto") {
    gpus = visible_gpus();
    if (gpus.empty()) return cpu_slots(1, threads);
    return gpu_slots(gpus, threads);
  }
  std::stringstream list(devices);
  for (std::string item; std::getline(list, item, ',');) {
    if (item.rfind("cuda:", 0) == 0) item = item.substr(5);
    const int gpu = parse_count(item, devices);
    check<ConfigError>(std::find(gpus.begin(), gpus.end(), gpu) == gpus.end(),
                       "--devices '{}': GPU {} is named twice", devices, gpu);
    gpus.push_back(gpu);
  }
  check<ConfigError>(!gpus.empty(), "--devices is empty; expected auto, cpu, cpu:N or GPU indices");
  return gpu_slots(gpus, threads);
}

JobSummary run_workers(const LaunchOptions& options, const std::vector<InputBlock>& blocks) {
  check<ConfigError>(!options.slots.empty(), "no worker slots");
  if (blocks.empty()) return JobSummary();
  return Supervisor(options, blocks).run();
}

}  // namespace engine
