#include "engine/serve/server.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "engine/common/error.h"
#include "engine/serve/api.h"
#include "engine/serve/http_server.h"
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

// The routes on the HTTP layer: what each path answers, in its dialect, and the lifecycle states
// (loading, ready, draining) every route obeys.
class Server {
 public:
  Server(const Config& config, ServeMetrics& metrics)
      : metrics_(metrics),
        http_(http_limits(config.serve), [this](const HttpRequest& r) { return handle(r); },
              [this](int status, const std::string& message, const std::string& path) {
                return refuse(status, message, path);
              }) {
    add_routes();
  }

  int bind(const std::string& host, int port) { return http_.bind(host, port); }
  void start() { http_.start(); }

  void set_loaded(Loaded* loaded) {
    loaded_ = loaded;
    ready_.store(true);
  }

  // SIGTERM: no new connections; requests on open ones get 503 and the connection is closed;
  // what is queued or under way is answered. Returns once nothing is in flight.
  void drain() {
    draining_.store(true);
    http_.stop_accepting();
    while (http_.requests_in_flight() > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  void stop() { http_.stop(); }

 private:
  using Call = std::function<std::string(const HttpRequest&)>;
  struct Route {
    std::string method;
    Dialect dialect;
    Call call;
    std::string content_type = "application/json";
  };

  static HttpLimits http_limits(const ServeConfig& serve) {
    HttpLimits limits;
    limits.max_connections = static_cast<size_t>(serve.max_connections);
    limits.max_body_bytes = static_cast<size_t>(serve.max_body_bytes);
    limits.head_timeout = std::chrono::milliseconds(static_cast<int64_t>(serve.head_timeout_s * 1e3));
    limits.body_timeout = std::chrono::milliseconds(static_cast<int64_t>(serve.body_timeout_s * 1e3));
    limits.idle_timeout = std::chrono::milliseconds(static_cast<int64_t>(serve.idle_timeout_s * 1e3));
    limits.write_timeout = limits.body_timeout;
    limits.io_threads = serve.io_threads;
    limits.handler_threads = serve.http_threads;
    return limits;
  }

  void route(const char* method, const char* path, Dialect dialect, Call call,
             const char* content_type = "application/json") {
    routes_[path] = Route{method, dialect, std::move(call), content_type};
  }

  // The dialect of `path`'s errors: its route's, else guessed from its prefix.
  Dialect dialect_of(const std::string& path) const {
    if (const auto found = routes_.find(path); found != routes_.end()) {
      return found->second.dialect;
    }
    if (path.rfind("/v1/embeddings", 0) == 0 || path.rfind("/v1/models", 0) == 0) {
      return Dialect::kOpenAi;
    }
    if (path.rfind("/v1/", 0) == 0 || path.rfind("/v2/", 0) == 0) return Dialect::kCohere;
    return Dialect::kTei;
  }

  HttpResponse json_response(int status, std::string body) const {
    HttpResponse response;
    response.status = status;
    response.body = std::move(body);
    return response;
  }

  HttpResponse refuse(int status, const std::string& message, const std::string& path) {
    metrics_.on_response(routes_.count(path) ? path : "unknown", status, 0);
    return json_response(status, error_body(dialect_of(path), status, message));
  }

  HttpResponse handle(const HttpRequest& request) {
    const auto start = Clock::now();
    const auto found = routes_.find(request.path);
    if (found == routes_.end()) {
      return refuse(404, fmt::format("no route {} {}", request.method, request.path),
                    request.path);
    }
    const Route& route = found->second;
    if (request.method != route.method) {
      HttpResponse response = refuse(
          405, fmt::format("{} takes {}, not {}", request.path, route.method, request.method),
          request.path);
      response.headers.emplace_back("Allow", route.method);
      return response;
    }
    HttpResponse response;
    try {
      response = json_response(200, route.call(request));
      response.content_type = route.content_type;
    } catch (const ApiError& error) {
      response = json_response(error.status(), error_body(route.dialect, error.status(),
                                                          error.what(), error.param()));
    } catch (const nlohmann::json::exception& error) {
      // A field of a type the route did not check: the client's JSON, not the server.
      response = json_response(422, error_body(route.dialect, 422, error.what()));
    } catch (const std::exception& error) {
      response = json_response(500, error_body(route.dialect, 500, error.what()));
      spdlog::error("{}: {}", request.path, error.what());
    }
    if (response.status == 503 && draining_.load()) response.close = true;
    if (request.path != "/metrics") {
      metrics_.on_response(request.path, response.status,
                           std::chrono::duration<double>(Clock::now() - start).count());
    }
    return response;
  }

  // The API once loaded; else the 503 of a server that is loading or draining.
  ServeApi& api() const {
    if (draining_.load()) throw ApiError(503, "the server is shutting down; retry on another");
    if (!ready_.load()) throw ApiError(503, "the model is loading; retry when /ready is 200");
    return *loaded_->api;
  }

  void add_routes() {
    route("POST", "/rerank", Dialect::kTei,
          [this](const HttpRequest& r) { return api().tei_rerank(r.body); });
    route("POST", "/predict", Dialect::kTei,
          [this](const HttpRequest& r) { return api().tei_predict(r.body); });
    route("POST", "/embed", Dialect::kTei,
          [this](const HttpRequest& r) { return api().tei_embed(r.body); });
    route("POST", "/embed_sparse", Dialect::kTei,
          [this](const HttpRequest& r) { return api().tei_embed_sparse(r.body); });
    route("POST", "/tokenize", Dialect::kTei,
          [this](const HttpRequest& r) { return api().tei_tokenize(r.body); });
    route("GET", "/info", Dialect::kTei,
          [this](const HttpRequest&) { return api().info(); });
    route("POST", "/v1/rerank", Dialect::kCohere,
          [this](const HttpRequest& r) { return api().cohere_rerank(r.body, 1); });
    route("POST", "/v2/rerank", Dialect::kCohere,
          [this](const HttpRequest& r) { return api().cohere_rerank(r.body, 2); });
    route("POST", "/v1/embeddings", Dialect::kOpenAi,
          [this](const HttpRequest& r) { return api().openai_embeddings(r.body); });
    // Liveness: the process answers. 503 only while loading, as before.
    route("GET", "/health", Dialect::kTei, [this](const HttpRequest&) -> std::string {
      if (!ready_.load()) throw ApiError(503, "loading");
      return "{\"status\":\"ok\"}";
    });
    // Readiness: warmed up and not draining; a load balancer sends requests only while 200.
    route("GET", "/ready", Dialect::kTei, [this](const HttpRequest&) -> std::string {
      if (draining_.load()) throw ApiError(503, "draining");
      if (!ready_.load()) throw ApiError(503, "loading");
      return "{\"status\":\"ready\"}";
    });
    route("GET", "/metrics", Dialect::kTei, [this](const HttpRequest&) {
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
      gauges.open_connections = static_cast<int64_t>(http_.open_connections());
      return metrics_.text(gauges);
    }, "text/plain; version=0.0.4");
  }

  ServeMetrics& metrics_;
  std::map<std::string, Route> routes_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
  Loaded* loaded_ = nullptr;
  HttpServer http_;  // last: its threads call the members above
};

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
  server.start();
  spdlog::info("listening on http://{}:{} (loading the model; /health is 503 until ready)", host,
               port);

  // The stopper takes the signal and drains: the model thread keeps answering meanwhile.
  std::mutex mutex;
  std::condition_variable drained_signal;
  bool drained = false;
  std::thread stopper([&] {
    int signal = 0;
    sigwait(&signals, &signal);
    spdlog::info("signal {}: no new connections; answering what is queued, then exiting", signal);
    server.drain();
    {
      const std::lock_guard<std::mutex> lock(mutex);
      drained = true;
    }
    drained_signal.notify_all();
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
    pthread_kill(stopper.native_handle(), SIGTERM);
    stopper.join();
    server.stop();
    throw;
  }
  {
    std::unique_lock<std::mutex> lock(mutex);
    drained_signal.wait(lock, [&] { return drained; });
  }
  stopper.join();
  server.stop();
  loaded.batcher->stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace engine
