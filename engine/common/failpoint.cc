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
  int64_t kill_at_line = 0;  // 0: none
  std::string once_file;
};

Failpoint parse_failpoint() {
  Failpoint failpoint;
  const char* text = std::getenv("ENGINE_FAILPOINT");
  if (text == nullptr || *text == '\0') return failpoint;
  const std::string spec(text);
  const std::string kill = "kill_at_line=";
  check<ConfigError>(spec.rfind(kill, 0) == 0,
                     "ENGINE_FAILPOINT='{}': expected kill_at_line=N[,once=FILE]", spec);
  const size_t comma = spec.find(',');
  const std::string number = spec.substr(kill.size(), comma - kill.size());
  char* end = nullptr;
  failpoint.kill_at_line = std::strtoll(number.c_str(), &end, 10);
  check<ConfigError>(!number.empty() && *end == '\0' && failpoint.kill_at_line > 0,
                     "ENGINE_FAILPOINT='{}': '{}' is not a line number", spec, number);
  if (comma != std::string::npos) {
    const std::string once = spec.substr(comma + 1);
    check<ConfigError>(once.rfind("once=", 0) == 0 && once.size() > 5,
                       "ENGINE_FAILPOINT='{}': expected once=FILE after the comma", spec);
    failpoint.once_file = once.substr(5);
  }
  return failpoint;
}

}  // namespace

void failpoint_at_line(int64_t line) {
  static const Failpoint failpoint = parse_failpoint();
  if (failpoint.kill_at_line != line) return;
  if (!failpoint.once_file.empty()) {
    const int fd = ::open(failpoint.once_file.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) return;  // fired already
    ::close(fd);
  }
  std::raise(SIGKILL);
}

}  // namespace engine
