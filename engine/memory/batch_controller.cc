#include "engine/memory/batch_controller.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace engine {

bool is_out_of_memory(const std::exception& error) {
  if (dynamic_cast<const c10::OutOfMemoryError*>(&error) != nullptr) return true;
  return std::strstr(error.what(), "out of memory") != nullptr;
}

double BatchController::predicted_rise(size_t batch, size_t length) const {
  const double tokens = static_cast<double>(batch) * static_cast<double>(length);
  const double squared = tokens * static_cast<double>(length);
  if (observations_ == 0) {
    return has_prior_ ? prior_linear_ * tokens + prior_quadratic_ * squared : 0;
  }
  if (one_length_ && has_prior_) {
    return prior_scale_ * (prior_linear_ * tokens + prior_quadratic_ * squared);
  }
  if (one_length_) return std::max(only_linear_ * tokens, only_quadratic_ * squared);
  return per_token_ * tokens + per_token_sq_ * squared;
}

size_t BatchController::max_batch(size_t length, size_t wanted) const {
  size_t most = std::max<size_t>(wanted, 1);
  // A batch at least as long as one that failed, and as large, fails again.
  for (auto it = failed_at_.begin(); it != failed_at_.end(); ++it) {
    if (it->first <= length) most = std::min(most, std::max<size_t>(it->second / 2, 1));
  }
  if (budget_ <= 0 || (observations_ == 0 && !has_prior_)) return most;
  const double per_sequence = predicted_rise(1, length);
  if (per_sequence <= 0) return most;
  const auto fits = static_cast<size_t>(std::floor(static_cast<double>(budget_) / per_sequence));
  return std::clamp<size_t>(fits, 1, most);
}

void BatchController::observe(size_t batch, size_t length, int64_t rise) {
  const double x1 = static_cast<double>(batch) * static_cast<double>(length);
  const double x2 = x1 * static_cast<double>(length);
  const double y = static_cast<double>(std::max<int64_t>(rise, 0));
  s11_ += x1 * x1;
  s12_ += x1 * x2;
  s22_ += x2 * x2;
  s1y_ += x1 * y;
  s2y_ += x2 * y;
  if (has_prior_) {
    const double prior = prior_linear_ * x1 + prior_quadratic_ * x2;
    s_py_ += prior * y;
    s_pp_ += prior * prior;
    if (s_pp_ > 0) prior_scale_ = s_py_ / s_pp_;
  }
  ++observations_;
  if (observations_ == 1) first_length_ = length;
  if (length != first_length_) one_length_ = false;
  only_linear_ = s1y_ / s11_;
  only_quadratic_ = s2y_ / s22_;
  fit();
}

void BatchController::set_prior(double per_token, double per_token_squared) {
  has_prior_ = per_token > 0 || per_token_squared > 0;
  prior_linear_ = std::max(per_token, 0.0);
  prior_quadratic_ = std::max(per_token_squared, 0.0);
}

void BatchController::fit() {
  // Normal equations of y = a*x1 + b*x2; when they have no non-negative solution the rise is put
  // on the per-token term alone.
  const double determinant = s11_ * s22_ - s12_ * s12_;
  if (observations_ >= 2 && determinant > 1e-9 * s11_ * s22_) {
    per_token_ = (s1y_ * s22_ - s2y_ * s12_) / determinant;
    per_token_sq_ = (s2y_ * s11_ - s1y_ * s12_) / determinant;
    if (per_token_ >= 0 && per_token_sq_ >= 0) return;
  }
  per_token_ = s1y_ / s11_;
  per_token_sq_ = 0;
}

void BatchController::out_of_memory(size_t batch, size_t length) {
  ++out_of_memory_count_;
  auto [it, inserted] = failed_at_.emplace(length, batch);
  if (!inserted) it->second = std::min(it->second, batch);
}

}  // namespace engine
