#include "engine/serve/server.h"

#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include <httplib.h>
#include <spdlog/spdlog.h>

#include "engine/common/error.h"
#include "engine/serve/api.h"
#include "engine/serve/metrics.h"
#include "engine/serve/request_batcher.h"

namespace engine {
namespace {

using Clock = std::chrono::steady_clock;

// What the routes need once the model is loaded.
struct Loaded {
  std::unique_ptr<JobRuntime> runtime;
  std::unique_ptr<RequestBatcher> batcher;
  std::unique_ptr<ServeApi> api;
};

class Server {
 public:
  Server(const Config& config, ServeMetrics& metrics) : metrics_(metrics) {
    http_.new_task_queue = [threads = config.serve.http_threads] {
      return new httplib::ThreadPool(static_cast<size_t>(threads));
    };
    http_.set_payload_max_length(static_cast<size_t>(config.serve.max_body_bytes));
    // A client that stops reading or writing holds its own connection, never the model.
    http_.set_read_timeout(30, 0);
    http_.set_write_timeout(30, 0);
    http_.set_keep_alive_timeout(30);
    http_.set_keep_alive_max_count(10000);  // clients keep their connections (the default is 5)
    add_routes();
  }

  // Binds; returns the port.
  int bind(const std::string& host, int port) {
    const int bound =
        port == 0 ? http_.bind_to_any_port(host) : (http_.bind_to_port(host, port) ? port : -1);
    check<std::runtime_error>(bound > 0, "cannot listen on {}:{} (in use, or not this machine's)",
                              host, port);
    return bound;
  }
  void listen() { http_.listen_after_bind(); }
  void stop() { http_.stop(); }

  void set_loaded(Loaded* loaded) {
    loaded_ = loaded;
    ready_.store(true);
  }

 private:
  using Call = std::function<std::string(ServeApi&, const httplib::Request&)>;

  void route(const char* method, const char* path, Dialect dialect, Call call) {
    const std::string name = path;
    auto handler = [this, name, dialect, call](const httplib::Request& request,
                                               httplib::Response& response) {
      const auto start = Clock::now();
      int status = 200;
      std::string body;
      try {
        if (!ready_.load()) throw ApiError(503, "the model is loading; retry when /health is 200");
        body = call(*loaded_->api, request);
      } catch (const ApiError& error) {
        status = error.status();
        body = error_body(dialect, status, error.what(), error.param());
      } catch (const std::exception& error) {
        status = 500;
        body = error_body(dialect, status, error.what());
        spdlog::error("{}: {}", name, error.what());
      }
      response.status = status;
      response.set_content(body, "application/json");
      metrics_.on_response(name, status,
                           std::chrono::duration<double>(Clock::now() - start).count());
    };
    if (std::string(method) == "GET") {
      http_.Get(path, handler);
    } else {
      http_.Post(path, handler);
    }
  }

  void add_routes() {
    route("POST", "/rerank", Dialect::kTei,
          [](ServeApi& api, const httplib::Request& r) { return api.tei_rerank(r.body); });
    route("POST", "/predict", Dialect::kTei,
          [](ServeApi& api, const httplib::Request& r) { return api.tei_predict(r.body); });
    route("POST", "/embed", Dialect::kTei,
          [](ServeApi& api, const httplib::Request& r) { return api.tei_embed(r.body); });
    route("POST", "/embed_sparse", Dialect::kTei,
          [](ServeApi& api, const httplib::Request& r) { return api.tei_embed_sparse(r.body); });
    route("POST", "/tokenize", Dialect::kTei,
          [](ServeApi& api, const httplib::Request& r) { return api.tei_tokenize(r.body); });
    route("GET", "/info", Dialect::kTei,
          [](ServeApi& api, const httplib::Request&) { return api.info(); });
    route("POST", "/v1/rerank", Dialect::kCohere,
          [](ServeApi& api, const httplib::Request& r) { return api.cohere_rerank(r.body, 1); });
    route("POST", "/v2/rerank", Dialect::kCohere,
          [](ServeApi& api, const httplib::Request& r) { return api.cohere_rerank(r.body, 2); });
    route("POST", "/v1/embeddings", Dialect::kOpenAi,
          [](ServeApi& api, const httplib::Request& r) { return api.openai_embeddings(r.body); });
    http_.Get("/health", [this](const httplib::Request&, httplib::Response& response) {
      const bool ready = ready_.load();
      response.status = ready ? 200 : 503;
      response.set_content(ready ? "{\"status\":\"ok\"}" : "{\"status\":\"loading\"}",
                           "application/json");
    });
    http_.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
      ServeGauges gauges;
      gauges.ready = ready_.load();
      if (gauges.ready) {
        const GuardStats stats = loaded_->batcher->guard_stats();
        const MemoryStats memory = loaded_->runtime->memory->stats();
        gauges.queued_sequences = loaded_->batcher->queued_sequences();
        gauges.allocated = memory.allocated;
        gauges.peak_allocated = std::max(stats.peak_allocated, memory.peak_allocated);
        gauges.reserved = memory.reserved;
        gauges.cache_emptied = loaded_->batcher->cache_emptied();
        gauges.out_of_memory = stats.out_of_memory;
        gauges.budget_splits = stats.splits_before;
        gauges.forward_passes = stats.forward_passes;
      }
      gauges.peak_resident = process_resident().peak;
      response.set_content(metrics_.text(gauges), "text/plain; version=0.0.4");
    });
    // Anything else, and bodies past the limit, in TEI's error shape.
    http_.set_error_handler([this](const httplib::Request& request, httplib::Response& response) {
      if (!response.body.empty()) return;
      metrics_.on_response(response.status == 404 ? "unknown" : request.path, response.status, 0);
      std::string message = fmt::format("no route {} {}", request.method, request.path);
      if (response.status == 413) {
        message = "the request body is larger than serve.max_body_bytes";
      }
      response.set_content(error_body(Dialect::kTei, response.status, message), "application/json");
    });
  }

  ServeMetrics& metrics_;
  httplib::Server http_;
  std::atomic<bool> ready_{false};
  Loaded* loaded_ = nullptr;
};

// cpp-httplib 0.11 (Debian 12) listens with a backlog of 5, compiled into the library: 64 clients
// connecting at once overflow it, and the kernel then resets connections. Linux lets a listening
// socket's backlog be raised by calling listen() again; the socket is found by its port, since
// the library does not hand it out.
void raise_listen_backlog(int port) {
  for (int fd = 0; fd < 4096; ++fd) {
    int listening = 0;
    socklen_t length = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0 || !listening) {
      continue;
    }
    sockaddr_storage address{};
    socklen_t size = sizeof(address);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) continue;
    int bound = -1;
    if (address.ss_family == AF_INET) {
      bound = ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
    } else if (address.ss_family == AF_INET6) {
      bound = ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
    }
    if (bound == port) {
      if (::listen(fd, SOMAXCONN) != 0) spdlog::warn("cannot raise the listen backlog");
      return;
    }
  }
  spdlog::warn("the listening socket was not found: the listen backlog stays at 5");
}

// SIGTERM and SIGINT are taken by one thread with sigwait: every other thread blocks them.
sigset_t stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  return signals;
}

}  // namespace

int run_server(const ServeOptions& options) {
  const sigset_t signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts: they inherit it
  ::signal(SIGPIPE, SIG_IGN);                     // a vanished client is its connection's error

  Config config =
      load_config(options.source.config_file, options.source.overrides, ConfigUse::kServe);
  spdlog::set_level(spdlog::level::from_str(config.logging.level));
  // The server answers rerank (score configs are served as rerank) or embed; requests ask for
  // their own top_n.
  if (config.task.kind == TaskKind::kScore) config.task.kind = TaskKind::kRerank;
  config.task.top_k = 0;
  const std::string host = options.host.empty() ? config.serve.host : options.host;
  const int wanted_port = options.port >= 0 ? options.port : config.serve.port;

  ServeMetrics metrics;
  Server server(config, metrics);
  const int port = server.bind(host, wanted_port);
  raise_listen_backlog(port);
  std::thread listening([&] { server.listen(); });
  spdlog::info("listening on http://{}:{} (loading the model; /health is 503 until ready)", host,
               port);

  std::atomic<bool> stop_requested{false};
  std::thread stopper([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    stop_requested.store(true);
    spdlog::info("signal {}: no new connections; answering what is queued, then exiting", signal);
    server.stop();
  });

  Loaded loaded;
  try {
    loaded.runtime = load_runtime(config);
    loaded.batcher = std::make_unique<RequestBatcher>(
        loaded.runtime->config, *loaded.runtime->adapter, *loaded.runtime->memory, metrics);
    const auto start = Clock::now();
    loaded.batcher->warm_up();
    loaded.api = std::make_unique<ServeApi>(loaded.runtime->config, loaded.runtime->bundle,
                                            *loaded.runtime->adapter, *loaded.batcher);
    server.set_loaded(&loaded);
    spdlog::info(
        "ready: {} ({}) on {} in {}, task {}, warmed up in {:.2f} s; serving on "
        "http://{}:{}",
        loaded.runtime->bundle.manifest.directory, loaded.runtime->bundle.manifest.family,
        loaded.runtime->bundle.device.str(), dtype_name(loaded.runtime->bundle.dtype),
        task_name(config.task.kind), std::chrono::duration<double>(Clock::now() - start).count(),
        host, port);
  } catch (...) {
    server.stop();
    listening.join();
    pthread_kill(stopper.native_handle(), SIGTERM);
    stopper.join();
    throw;
  }
  listening.join();  // returns once stopped, after the connections' handlers have answered
  stopper.join();
  loaded.batcher->stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace engine
