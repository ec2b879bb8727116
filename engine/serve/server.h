// `engine serve`: the routes of ServeApi on the HTTP layer (http_server.h, Boost.Beast). It binds
// first and answers 503 (GET /health, /ready and every model route) while the bundle loads and
// warms up with the longest shape, then reports ready. Requests from many connections are batched
// together by one RequestBatcher. SIGTERM or SIGINT: stop accepting, /ready and new requests on
// open connections 503, answer what is queued and under way, exit 0.
#pragma once

#include <string>

#include "engine/jobs/job.h"

namespace engine {

struct ServeOptions {
  JobSource source;
  std::string host;  // empty: serve.host
  int port = -1;     // -1: serve.port
};

// Returns the exit status once stopped by a signal. Throws ConfigError for a bad config or bundle
// and std::runtime_error when the address cannot be bound.
int run_server(const ServeOptions& options);

}  // namespace engine
