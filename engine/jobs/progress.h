// A progress line on stderr for long jobs: records done, records/s and the time left.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace engine {

class ProgressReporter {
 public:
  using Clock = std::chrono::steady_clock;

  // `total` may be 0 when unknown; `interval_s` 0 turns the line off.
  ProgressReporter(int64_t total, double interval_s);

  // Reports when the interval has passed since the last line. `done` may be fractional; `detail`
  // is added to the line.
  void update(double done, const std::string& detail = "");
  void set_total(int64_t total) { total_ = total; }
  double elapsed_s() const;
  // "1200/5000 records (24.0%), 350.2 records/s, ETA 0:00:11"
  static std::string format_line(double done, int64_t total, double elapsed_s);

 private:
  int64_t total_;
  double interval_s_;
  Clock::time_point start_;
  Clock::time_point last_;
};

}  // namespace engine
