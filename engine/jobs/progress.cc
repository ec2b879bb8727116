#include "engine/jobs/progress.h"

#include <cmath>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace engine {

ProgressReporter::ProgressReporter(int64_t total, double interval_s)
    : total_(total), interval_s_(interval_s), start_(Clock::now()), last_(start_) {}

double ProgressReporter::elapsed_s() const {
  return std::chrono::duration<double>(Clock::now() - start_).count();
}

void ProgressReporter::update(double done, const std::string& detail) {
  if (interval_s_ <= 0) return;
  const auto now = Clock::now();
  if (std::chrono::duration<double>(now - last_).count() < interval_s_) return;
  last_ = now;
  spdlog::info("progress: {}{}", format_line(done, total_, elapsed_s()), detail);
}

std::string ProgressReporter::format_line(double done, int64_t total, double elapsed_s) {
  const double rate = elapsed_s > 0 ? done / elapsed_s : 0;
  if (total <= 0) return fmt::format("{:.0f} records, {:.1f} records/s", done, rate);
  std::string eta = "unknown";
  if (rate > 0) {
    const auto seconds = static_cast<int64_t>(std::ceil((total - done) / rate));
    eta = fmt::format("{}:{:02}:{:02}", seconds / 3600, seconds / 60 % 60, seconds % 60);
  }
  return fmt::format("{:.0f}/{} records ({:.1f}%), {:.1f} records/s, ETA {}", done, total,
                     100.0 * done / total, rate, eta);
}

}  // namespace engine
