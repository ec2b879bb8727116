#include "engine/memory/cache_policy.h"

namespace engine {

void CachePolicy::after_batch() {
  if (mode_ != EmptyCache::kWhenUnusedAbove) return;
  const MemoryStats stats = memory_.stats();
  if (stats.reserved - stats.allocated > threshold_) empty_now();
}

void CachePolicy::after_request() {
  if (mode_ == EmptyCache::kAfterRequest) empty_now();
}

void CachePolicy::empty_now() {
  memory_.empty_cache();
  ++times_emptied_;
}

}  // namespace engine
