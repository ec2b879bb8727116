#include "engine/serve/http_server.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

// Beast's string_view is std::string_view in this file (the only one that includes Beast).
#define BOOST_BEAST_USE_STD_STRING_VIEW
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace engine {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string HttpRequest::header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (beast::iequals(key, name)) return value;
  }
  return {};
}

namespace {

// A fixed pool of threads that run jobs in the order they were posted.
class HandlerPool {
 public:
  explicit HandlerPool(int threads) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
  }
  ~HandlerPool() { stop(); }

  void post(std::function<void()> job) {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(job));
    }
    ready_.notify_one();
  }

  // Runs what is posted, then joins the threads.
  void stop() {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    ready_.notify_all();
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// A request target without its query string: the path the routes are matched on.
std::string path_of(std::string_view target) {
  return std::string(target.substr(0, target.find('?')));
}

constexpr size_t kReadChunk = 4096;
// How long a connection closed after a refusal keeps reading (and dropping) what the client still
// sends, so that the client reads the answer instead of a reset.
constexpr std::chrono::seconds kLinger{2};

}  // namespace

struct HttpServer::State {
  State(HttpLimits limits_in, Handler handler_in, Refusal refusal_in)
      : limits(limits_in), handler(std::move(handler_in)), refusal(std::move(refusal_in)) {}

  void accept();

  // Declared before the io_context: the sessions its pending handlers hold are destroyed with
  // it, and they count themselves out of these.
  HttpLimits limits;
  Handler handler;
  Refusal refusal;
  std::atomic<size_t> connections{0};
  std::atomic<size_t> in_flight{0};
  std::atomic<bool> accepting{false};
  std::unique_ptr<HandlerPool> pool;
  net::io_context io;
  tcp::acceptor acceptor{io};
  net::steady_timer retry{io};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> io_threads;
};

namespace {

// One connection: reads a request (head under its deadline, then body under its own), hands it to
// the handler pool, writes the answer, and reads the next; all on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, HttpServer::State& server)
      : stream_(std::move(socket)), server_(server) {
    ++server_.connections;
  }
  ~Session() { --server_.connections; }

  void start() {
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->wait(); });
  }

  // Answers with a refusal before reading anything, and closes.
  void refuse(int status, const std::string& message) {
    net::dispatch(stream_.get_executor(), [self = shared_from_this(), status, message] {
      self->respond(self->server_.refusal(status, message, ""), true, false);
    });
  }

 private:
  const HttpLimits& limits() const { return server_.limits; }

  // A kept-alive connection waits for its next request's first bytes under the idle deadline;
  // bytes a pipelining client already sent are parsed at once.
  void wait() {
    if (buffer_.size() > 0) return read_head();
    stream_.expires_after(limits().idle_timeout);
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = shared_from_this()](beast::error_code error, size_t read) {
                              if (error) return self->close();  // idle, or gone: nothing to answer
                              self->buffer_.commit(read);
                              self->read_head();
                            });
  }

  void read_head() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(limits().max_head_bytes));
    parser_->body_limit(static_cast<std::uint64_t>(limits().max_body_bytes));
    path_.clear();
    stream_.expires_after(limits().head_timeout);
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code error, size_t) {
                              self->on_head(error);
                            });
  }

  void on_head(beast::error_code error) {
    if (error) return on_read_error(error, "head");
    const auto& head = parser_->get();
    path_ = path_of(head.target());
    keep_alive_ = head.keep_alive();
    version_ = head.version();
    const bool has_body = parser_->content_length().has_value() || parser_->chunked();
    if (!has_body && (head.method() == http::verb::post || head.method() == http::verb::put ||
                      head.method() == http::verb::patch)) {
      return respond(server_.refusal(411,
                                     fmt::format("a {} needs a Content-Length header or a "
                                                 "chunked body",
                                                 head.method_string()),
                                     path_),
                     true, false);
    }
    if (parser_->is_done()) return dispatch();
    if (beast::iequals(head[http::field::expect], "100-continue")) {
      auto go_on = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                       version_);
      stream_.expires_after(limits().write_timeout);
      return http::async_write(stream_, *go_on,
                               [self = shared_from_this(), go_on](beast::error_code written,
                                                                  size_t) {
                                 if (written) return self->close();
                                 self->read_body();
                               });
    }
    read_body();
  }

  void read_body() {
    stream_.expires_after(limits().body_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code error, size_t) {
                       if (error) return self->on_read_error(error, "body");
                       self->dispatch();
                     });
  }

  // What went wrong while reading `part` of a request: a client that left or was too slow is
  // closed (the stream has closed the socket on a deadline); a request that breaks the limits or
  // the protocol is answered, then closed, since its framing cannot be trusted.
  void on_read_error(beast::error_code error, const char* part) {
    if (error == beast::error::timeout) {
      spdlog::debug("closing a connection: its request {} did not arrive within {} ms", part,
                    std::string(part) == "head" ? limits().head_timeout.count()
                                                : limits().body_timeout.count());
      return close();
    }
    if (error == http::error::end_of_stream || error == http::error::partial_message ||
        error == net::error::eof || error == net::error::connection_reset ||
        error == net::error::operation_aborted) {
      return close();
    }
    // The request line is parsed before any header is refused.
    if (path_.empty() && parser_) path_ = path_of(parser_->get().target());
    int status = 400;
    std::string message = fmt::format("malformed HTTP request {}: {}", part, error.message());
    if (error == http::error::body_limit) {
      status = 413;
      message = fmt::format("the request body is larger than serve.max_body_bytes ({} bytes)",
                            limits().max_body_bytes);
    } else if (error == http::error::header_limit) {
      status = 431;
      message = fmt::format("the request line and headers are larger than {} bytes",
                            limits().max_head_bytes);
    }
    respond(server_.refusal(status, message, path_), true, false);
  }

  void dispatch() {
    auto message = parser_->release();
    parser_.reset();
    auto request = std::make_shared<HttpRequest>();
    request->method = std::string(message.method_string());
    request->path = path_;
    for (const auto& field : message) {
      request->headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    request->body = std::move(message.body());
    ++server_.in_flight;
    server_.pool->post([self = shared_from_this(), request] {
      HttpResponse answer;
      try {
        answer = self->server_.handler(*request);
      } catch (const std::exception& error) {
        spdlog::error("{} {}: {}", request->method, request->path, error.what());
        answer = self->server_.refusal(500, error.what(), request->path);
      }
      net::post(self->stream_.get_executor(),
                [self, answer = std::move(answer)]() mutable {
                  self->respond(std::move(answer), false, true);
                });
    });
  }

  // Writes `answer`; then reads the next request, or closes. `counted`: the answer of a request
  // in flight.
  void respond(HttpResponse answer, bool must_close, bool counted) {
    auto message = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(answer.status), version_);
    message->set(http::field::server, "engine");
    message->set(http::field::content_type, answer.content_type);
    for (const auto& [name, value] : answer.headers) message->set(name, value);
    const bool keep = keep_alive_ && !answer.close && !must_close;
    message->keep_alive(keep);
    message->body() = std::move(answer.body);
    message->prepare_payload();
    stream_.expires_after(limits().write_timeout);
    http::async_write(stream_, *message,
                      [self = shared_from_this(), message, keep, counted](beast::error_code error,
                                                                          size_t) {
                        if (counted) --self->server_.in_flight;
                        if (error) return self->close();
                        if (!keep) return self->linger();
                        self->wait();
                      });
  }

  // Half-closes and drops what the client still sends for a while, then closes: a client still
  // sending a body that was refused reads the answer instead of a connection reset.
  void linger() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(kLinger);
    drop_input();
  }

  void drop_input() {
    buffer_.consume(buffer_.size());
    stream_.async_read_some(buffer_.prepare(64 << 10),
                            [self = shared_from_this()](beast::error_code error, size_t read) {
                              if (error) return self->close();
                              self->buffer_.commit(read);
                              self->drop_input();
                            });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  HttpServer::State& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string path_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
};

}  // namespace

void HttpServer::State::accept() {
  acceptor.async_accept(net::make_strand(io), [this](beast::error_code error, tcp::socket socket) {
    if (!accepting.load()) return;
    if (error) {
      // Out of descriptors: the connection waits in the backlog until one is closed.
      if (error == net::error::no_descriptors) {
        spdlog::warn("accepting connections: {}; retrying in 100 ms", error.message());
        retry.expires_after(std::chrono::milliseconds(100));
        retry.async_wait([this](beast::error_code) { accept(); });
        return;
      }
      spdlog::warn("accepting a connection: {}", error.message());
      return accept();
    }
    auto session = std::make_shared<Session>(std::move(socket), *this);
    if (connections.load() > limits.max_connections) {
      session->refuse(503, fmt::format("this server holds {} connections, its limit; retry later",
                                       limits.max_connections));
    } else {
      session->start();
    }
    accept();
  });
}

HttpServer::HttpServer(HttpLimits limits, Handler handler, Refusal refusal)
    : state_(std::make_unique<State>(limits, std::move(handler), std::move(refusal))) {}

HttpServer::~HttpServer() { stop(); }

int HttpServer::bind(const std::string& host, int port) {
  // Every connection is a descriptor: take what the hard limit allows, and hold the connection
  // cap under it.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != RLIM_INFINITY) {
    const size_t room = files.rlim_cur > 256 ? static_cast<size_t>(files.rlim_cur) - 256 : 1;
    if (state_->limits.max_connections > room) {
      spdlog::warn("serve.max_connections {} is past what the descriptor limit ({}) allows: {}",
                   state_->limits.max_connections, files.rlim_cur, room);
      state_->limits.max_connections = room;
    }
  }
  beast::error_code error;
  const auto address = net::ip::make_address(host, error);
  if (error) {
    throw std::runtime_error(fmt::format("cannot listen on {}:{}: not an IP address", host, port));
  }
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  tcp::acceptor& acceptor = state_->acceptor;
  acceptor.open(endpoint.protocol(), error);
  if (!error) acceptor.set_option(net::socket_base::reuse_address(true), error);
  if (!error) acceptor.bind(endpoint, error);
  if (!error) acceptor.listen(net::socket_base::max_listen_connections, error);
  if (error) {
    throw std::runtime_error(fmt::format("cannot listen on {}:{}: {} (in use, or not this "
                                         "machine's)",
                                         host, port, error.message()));
  }
  return acceptor.local_endpoint().port();
}

void HttpServer::start() {
  State& state = *state_;
  state.pool = std::make_unique<HandlerPool>(std::max(1, state.limits.handler_threads));
  state.work.emplace(net::make_work_guard(state.io));
  state.accepting.store(true);
  state.accept();
  for (int i = 0; i < std::max(1, state.limits.io_threads); ++i) {
    state.io_threads.emplace_back([&state] { state.io.run(); });
  }
}

void HttpServer::stop_accepting() {
  State& state = *state_;
  if (!state.accepting.exchange(false)) return;
  net::post(state.io, [&state] {
    beast::error_code ignored;
    state.acceptor.close(ignored);
    state.retry.cancel();
  });
}

size_t HttpServer::requests_in_flight() const { return state_->in_flight.load(); }

size_t HttpServer::open_connections() const { return state_->connections.load(); }

void HttpServer::stop() {
  State& state = *state_;
  stop_accepting();
  if (state.pool) state.pool->stop();
  state.work.reset();
  state.io.stop();
  for (std::thread& thread : state.io_threads) {
    if (thread.joinable()) thread.join();
  }
  state.io_threads.clear();
}

}  // namespace engine
