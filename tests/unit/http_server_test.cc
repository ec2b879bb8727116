// The HTTP layer alone (engine/serve/http_server.h), driven over real sockets with raw bytes:
// keep-alive and pipelining, chunked bodies, 100-continue, the body limit enforced from the head,
// the deadlines, the connection cap, and the refusals of malformed requests.
#include "engine/serve/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace engine {
namespace {

using Clock = std::chrono::steady_clock;

// A client connection that writes raw bytes and reads what comes back.
class RawClient {
 public:
  explicit RawClient(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawClient() { ::close(fd_); }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return connected_; }

  void send(const std::string& bytes) {
    size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }

  // What arrives until `done` holds for it, the peer closes, or `timeout` passes.
  template <typename Done>
  std::string read_until(Done done, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = Clock::now() + timeout;
    while (!done(received_) && Clock::now() < deadline) {
      pollfd ready{fd_, POLLIN, 0};
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (::poll(&ready, 1, static_cast<int>(std::max<int64_t>(1, left.count()))) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      received_.append(chunk, static_cast<size_t>(n));
    }
    return received_;
  }

  // The next `count` whole responses (status line to the end of the Content-Length body).
  std::vector<std::string> responses(size_t count) {
    read_until([count](const std::string& text) { return split(text).size() >= count; });
    std::vector<std::string> all = split(received_);
    return all;
  }

  // Whether the server closed the connection within `timeout`.
  bool closed_within(std::chrono::milliseconds timeout) {
    read_until([this](const std::string&) { return closed_; }, timeout);
    return closed_;
  }

 private:
  // The complete responses in `text`.
  static std::vector<std::string> split(const std::string& text) {
    std::vector<std::string> out;
    size_t at = 0;
    while (true) {
      const size_t head_end = text.find("\r\n\r\n", at);
      if (head_end == std::string::npos) break;
      const std::string head = text.substr(at, head_end - at);
      size_t length = 0;
      const size_t field = head.find("Content-Length: ");
      if (field != std::string::npos) length = std::stoul(head.substr(field + 16));
      if (text.size() < head_end + 4 + length) break;
      out.push_back(text.substr(at, head_end + 4 + length - at));
      at = head_end + 4 + length;
    }
    return out;
  }

  int fd_;
  bool connected_ = false;
  bool closed_ = false;
  std::string received_;
};

int status_of(const std::string& response) {
  return response.size() > 12 ? std::stoi(response.substr(9, 3)) : 0;
}

std::string body_of(const std::string& response) {
  const size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

class HttpServerTest : public ::testing::Test {
 protected:
  void start(HttpLimits limits) {
    server_ = std::make_unique<HttpServer>(
        limits,
        [this](const HttpRequest& request) {
          ++handled_;
          if (request.path == "/fail") throw std::runtime_error("the handler failed");
          if (request.path == "/slow") std::this_thread::sleep_for(std::chrono::milliseconds(300));
          HttpResponse response;
          response.content_type = "text/plain";
          response.body = request.method + " " + request.path + " [" + request.body + "] " +
                          request.header("x-tag");
          return response;
        },
        [](int status, const std::string& message, const std::string& path) {
          HttpResponse response;
          response.status = status;
          response.body = std::to_string(status) + " " + path + ": " + message;
          return response;
        });
    port_ = server_->bind("127.0.0.1", 0);
    server_->start();
  }

  void TearDown() override {
    if (server_) server_->stop();
  }

  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
  std::atomic<int> handled_{0};
};

TEST_F(HttpServerTest, KeptAliveAndPipelinedRequestsAreAnsweredInOrder) {
  start({});
  RawClient client(port_);
  ASSERT_TRUE(client.connected());
  client.send("GET /one?x=1 HTTP/1.1\r\nHost: h\r\nX-Tag: first\r\n\r\n");
  ASSERT_EQ(client.responses(1).size(), 1u);
  // Two more in one write: the second is parsed from what is left after the first.
  client.send(
      "POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
      "GET /three HTTP/1.1\r\nHost: h\r\n\r\n");
  const auto answers = client.responses(3);
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_EQ(body_of(answers[0]), "GET /one [] first");
  EXPECT_EQ(body_of(answers[1]), "POST /two [hello] ");
  EXPECT_EQ(body_of(answers[2]), "GET /three [] ");
  EXPECT_EQ(status_of(answers[2]), 200);
  EXPECT_FALSE(client.closed_within(std::chrono::milliseconds(100)));
}

TEST_F(HttpServerTest, AChunkedBodyIsDecodedAndExpectContinueIsAnswered) {
  start({});
  RawClient chunked(port_);
  chunked.send(
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n");
  const auto answers = chunked.responses(1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(body_of(answers[0]), "POST /c [abcdefg] ");

  RawClient waiting(port_);
  waiting.send("POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
  const std::string go_on = waiting.read_until(
      [](const std::string& text) { return text.find("\r\n\r\n") != std::string::npos; });
  EXPECT_EQ(go_on.rfind("HTTP/1.1 100 Continue", 0), 0u) << go_on;
  waiting.send("ok");
  const std::string all = waiting.read_until(
      [](const std::string& text) { return text.find("[ok]") != std::string::npos; });
  EXPECT_NE(all.find("POST /e [ok] "), std::string::npos) << all;
}

TEST_F(HttpServerTest, ABodyPastTheLimitIsRefusedFromItsHeadAlone) {
  HttpLimits limits;
  limits.max_body_bytes = 1000;
  start(limits);
  RawClient client(port_);
  // Only the head is sent: the refusal cannot have waited for the body.
  client.send("POST /big HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n");
  const auto answers = client.responses(1);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(status_of(answers[0]), 413) << answers[0];
  EXPECT_NE(body_of(answers[0]).find("/big: the request body is larger than"), std::string::npos);
  EXPECT_TRUE(client.closed_within(std::chrono::seconds(5)));

  // A chunked body is counted as it arrives.
  RawClient chunked(port_);
  chunked.send("POST /big HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
  chunked.send("800\r\n" + std::string(0x800, 'x') + "\r\n");
  const auto refused = chunked.responses(1);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(status_of(refused[0]), 413);
  EXPECT_EQ(handled_.load(), 0);
}

TEST_F(HttpServerTest, MalformedRequestsAreRefusedWithTheirStatus) {
  HttpLimits limits;
  limits.max_head_bytes = 2048;
  start(limits);
  struct Case {
    std::string bytes;
    int status;
  };
  const std::vector<Case> cases = {
      {"GARBAGE\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 12x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
      {"POST /p HTTP/1.1\r\nHost: h\r\n\r\n", 411},
      {"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(4000, 'a') + "\r\n\r\n", 431},
      {"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400},
  };
  for (const Case& c : cases) {
    RawClient client(port_);
    client.send(c.bytes);
    const auto answers = client.responses(1);
    ASSERT_EQ(answers.size(), 1u) << c.bytes.substr(0, 60);
    EXPECT_EQ(status_of(answers[0]), c.status) << c.bytes.substr(0, 60) << "\n" << answers[0];
    EXPECT_TRUE(client.closed_within(std::chrono::seconds(5))) << c.bytes.substr(0, 60);
  }
  RawClient failing(port_);
  failing.send("GET /fail HTTP/1.1\r\nHost: h\r\n\r\n");
  const auto failed = failing.responses(1);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(status_of(failed[0]), 500);
  EXPECT_EQ(body_of(failed[0]), "500 /fail: the handler failed");
}

TEST_F(HttpServerTest, SlowClientsAreClosedAtTheirDeadlinesWhileOthersAreAnswered) {
  HttpLimits limits;
  // Deadlines well past the bound on the normal request, so that meeting it cannot come from the
  // stalled connections having been closed already.
  limits.head_timeout = std::chrono::milliseconds(2000);
  limits.body_timeout = std::chrono::milliseconds(2000);
  limits.idle_timeout = std::chrono::milliseconds(3000);
  start(limits);
  std::vector<std::unique_ptr<RawClient>> stalled;
  for (int i = 0; i < 200; ++i) {
    stalled.push_back(std::make_unique<RawClient>(port_));
    stalled.back()->send(i % 2 ? "POST /rer" : "POST /b HTTP/1.1\r\nContent-Length: 9\r\n\r\nab");
  }
  RawClient normal(port_);
  const auto start_time = Clock::now();
  normal.send("GET /now HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(normal.responses(1).size(), 1u);
  EXPECT_LT(Clock::now() - start_time, std::chrono::milliseconds(1000))
      << "a normal request waited behind the stalled ones";
  EXPECT_EQ(server_->open_connections(), 201u);
  for (auto& client : stalled) EXPECT_TRUE(client->closed_within(std::chrono::seconds(5)));
  EXPECT_TRUE(normal.closed_within(std::chrono::seconds(5))) << "idle past idle_timeout";
  EXPECT_EQ(handled_.load(), 1);
}

TEST_F(HttpServerTest, ConnectionsPastTheCapAreRefusedAndInFlightRequestsFinishAfterStopAccepting) {
  HttpLimits limits;
  limits.max_connections = 3;
  start(limits);
  std::vector<std::unique_ptr<RawClient>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<RawClient>(port_));
    open.back()->send("GET /hold HTTP/1.1\r\nHost: h\r\n\r\n");
    ASSERT_EQ(open.back()->responses(1).size(), 1u);
  }
  RawClient extra(port_);
  const auto refused = extra.responses(1);
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(status_of(refused[0]), 503) << refused[0];
  EXPECT_NE(body_of(refused[0]).find("3 connections"), std::string::npos);

  // A request under way when accepting stops is still answered.
  open[0]->send("GET /slow HTTP/1.1\r\nHost: h\r\n\r\n");
  while (server_->requests_in_flight() == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  server_->stop_accepting();
  const auto answers = open[0]->responses(2);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(body_of(answers[1]), "GET /slow [] ");
  // It counts until its answer is written, a moment after the client may have read it.
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (server_->requests_in_flight() != 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(server_->requests_in_flight(), 0u);
  RawClient late(port_);
  EXPECT_TRUE(!late.connected() || late.closed_within(std::chrono::seconds(2)));
}

}  // namespace
}  // namespace engine
