// A CPU allocator installed through LibTorch that counts the bytes of live CPU tensors, keeps
// their peak, and refuses an allocation past a limit with LibTorch's own out-of-memory error.
// With it the out-of-memory path (split the batch, retry) runs for real on a machine without a
// GPU. Memory that oneDNN or BLAS take for their own scratch space is not seen.
#pragma once

#include <atomic>
#include <cstdint>

namespace engine {

class CountingCpuAllocator {
 public:
  // Installs the allocator as LibTorch's CPU allocator (once per process) and returns it.
  static CountingCpuAllocator& install();

  void set_limit(int64_t bytes);  // 0: no limit
  int64_t limit() const { return limit_.load(); }
  int64_t allocated() const { return allocated_.load(); }
  int64_t peak() const { return peak_.load(); }
  void reset_peak() { peak_.store(allocated_.load()); }
  int64_t refused() const { return refused_.load(); }  // allocations refused so far

  // Counts `bytes` more, or returns false when that would pass the limit.
  bool reserve(int64_t bytes);
  void release(int64_t bytes) { allocated_.fetch_sub(bytes); }

 private:
  CountingCpuAllocator() = default;

  std::atomic<int64_t> limit_{0};
  std::atomic<int64_t> allocated_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> refused_{0};
};

}  // namespace engine
