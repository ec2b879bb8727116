#include "engine/common/failpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <string>

#include "engine/common/error.h"

namespace engine {
namespace {

struct Failpoint {
  std::string kind;  // kill_at_line or garble_done; empty: none
  int64_t at = 0;    // the line or the block
  std::string once_file;
};

Failpoint parse_failpoint() {
  Failpoint failpoint;
  const char* text = std::getenv("ENGINE_FAILPOINT");
  if (text == nullptr || *text == '\0') return failpoint;
  const std::string spec(text);
  const size_t equals = spec.find('=');
  failpoint.kind = spec.substr(0, equals);
  check<ConfigError>(equals != std::string::npos &&
                         (failpoint.kind == "kill_at_line" || failpoint.kind == "garble_done"),
                     "ENGINE_FAILPOINT='{}': expected kill_at_line=N or garble_done=N, then "
                     "optionally ,once=FILE",
                     spec);
  const size_t comma = spec.find(',');
  const std::string number = spec.substr(equals + 1, comma - equals - 1);
  char* end = nullptr;
  failpoint.at = std::strtoll(number.c_str(), &end, 10);
  const int64_t least = failpoint.kind == "kill_at_line" ? 1 : 0;
  check<ConfigError>(!number.empty() && *end == '\0' && failpoint.at >= least,
                     "ENGINE_FAILPOINT='{}': '{}' is not a {} number", spec, number,
                     failpoint.kind == "kill_at_line" ? "line" : "block");
  if (comma != std::string::npos) {
    const std::string once = spec.substr(comma + 1);
    check<ConfigError>(once.rfind("once=", 0) == 0 && once.size() > 5,
                       "ENGINE_FAILPOINT='{}': expected once=FILE after the comma", spec);
    failpoint.once_file = once.substr(5);
  }
  return failpoint;
}

const Failpoint& failpoint() {
  static const Failpoint parsed = parse_failpoint();
  return parsed;
}

// Whether the failpoint `kind` fires at `at`: once=FILE lets only the process that creates FILE.
bool fires(const char* kind, int64_t at) {
  const Failpoint& point = failpoint();
  if (point.kind != kind || point.at != at) return false;
  if (point.once_file.empty()) return true;
  const int fd = ::open(point.once_file.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
  if (fd < 0) return false;  // fired already
  ::close(fd);
  return true;
}

}  // namespace

void failpoint_at_line(int64_t line) {
  if (failpoint().kind.empty()) return;
  if (fires("kill_at_line", line)) std::raise(SIGKILL);
}

bool failpoint_garble_done(int64_t block) {
  return !failpoint().kind.empty() && fires("garble_done", block);
}

}  // namespace engine
