// Error types of the engine. Each one maps to an exit status (see cli/main.cc): configuration
// and bundle errors are the user's to fix (exit 2), record errors become error lines and the
// job goes on, anything else is a fatal runtime error (exit 1).
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace engine {

// A configuration, command-line or model-bundle problem: the job cannot start. Exit status 2.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One input record cannot be processed; it gets an error line and the job goes on.
class RecordError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws `Error` with a formatted message when `condition` is false. The message should say what
// was found, where, and what was expected.
template <typename Error, typename... Args>
void check(bool condition, fmt::format_string<Args...> format, Args&&... args) {
  if (!condition) throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace engine
