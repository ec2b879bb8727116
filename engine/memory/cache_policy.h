// When to give the allocator's cached, unused blocks back to the device: never, after every
// request (a window of records in a batch job), or when reserved-but-unused memory passes a
// threshold. Emptying costs the next allocations a trip to the driver, so "never" is the default.
#pragma once

#include <cstdint>

#include "engine/config/config.h"
#include "engine/memory/device_memory.h"

namespace engine {

class CachePolicy {
 public:
  CachePolicy(const MemoryConfig& config, DeviceMemory& memory)
      : mode_(config.empty_cache), threshold_(config.empty_cache_above), memory_(memory) {}

  // After a batch: empties the cache when unused reserved memory passes the threshold.
  void after_batch();
  // After a request: empties the cache under after_request.
  void after_request();
  // Empties the cache now (after an out-of-memory error, whatever the mode).
  void empty_now();

  int64_t times_emptied() const { return times_emptied_; }

 private:
  EmptyCache mode_;
  int64_t threshold_;
  DeviceMemory& memory_;
  int64_t times_emptied_ = 0;
};

}  // namespace engine
