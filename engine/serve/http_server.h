// The HTTP/1.1 transport of `engine serve`, on Boost.Beast and Asio (Debian's libboost-dev; why
// this library: docs/design-notes.md, "The HTTP layer"). Connections are event-driven: a few I/O
// threads serve every open connection, so an idle or slow client costs a socket and a buffer, not
// a thread. Each connection has a deadline for its request head and one for its body, the body
// limit is enforced while reading (a Content-Length past it is refused before the body is read),
// keep-alive and pipelined requests are answered in order, and past `max_connections` a new
// connection gets a 503 and is closed. Complete requests go to the handler on a pool of handler
// threads, never on an I/O thread; the model work behind them runs on the engine's own threads.
// This layer knows nothing of the routes: what it refuses itself (a malformed request, a body too
// large, a client too slow) it answers with the body the `Refusal` callback writes.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace engine {

struct HttpRequest {
  std::string method;  // as sent: GET, POST, ...
  std::string path;    // the target without its query string
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // as sent, in order

  // The value of the first header named `name` (compared case-insensitively); empty when absent.
  std::string header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // more headers (Allow, Retry-After)
  bool close = false;  // close the connection after this answer
};

struct HttpLimits {
  size_t max_connections = 10000;  // open at once; past it a new one gets a 503 and is closed
  size_t max_head_bytes = 64 << 10;                 // request line and headers; past it: 431
  size_t max_body_bytes = 16 << 20;                 // past it: 413, before the body is read
  std::chrono::milliseconds head_timeout{10000};    // from a request's first byte to its last header
  std::chrono::milliseconds body_timeout{30000};    // from the head to the body's last byte
  std::chrono::milliseconds idle_timeout{60000};    // a kept-alive connection waiting for a request
  std::chrono::milliseconds write_timeout{30000};   // a client that does not read its answer
  int io_threads = 1;        // threads serving the connections
  int handler_threads = 64;  // requests handled at once; more wait for a free thread
};

class HttpServer {
 public:
  // Runs on a handler thread; may block (it waits for the model). An exception becomes a 500
  // through the refusal callback.
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  // The answer to a request this layer refuses: its status (400, 405, 408, 411, 413, 431, 500,
  // 503), a message that says what and where, and the request's path where the head was read
  // (else empty). The connection is closed after it.
  using Refusal =
      std::function<HttpResponse(int status, const std::string& message, const std::string& path)>;

  HttpServer(HttpLimits limits, Handler handler, Refusal refusal);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Listens on `host`:`port` (0: any free port) and returns the port. Throws std::runtime_error
  // when the address cannot be bound.
  int bind(const std::string& host, int port);
  // Starts the I/O and handler threads; returns at once.
  void start();
  // Stops accepting connections; open ones keep being served.
  void stop_accepting();
  // Requests read and not yet answered (handled, or being written back).
  size_t requests_in_flight() const;
  size_t open_connections() const;
  // Closes every connection and joins the threads. Call after stop_accepting() and once
  // requests_in_flight() is 0, or answers under way are cut.
  void stop();

  struct State;  // the connections' shared state, defined with them in http_server.cc

 private:
  std::unique_ptr<State> state_;
};

}  // namespace engine
