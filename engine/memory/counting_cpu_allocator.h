// A CPU allocator installed through LibTorch that counts the bytes of live CPU tensors, keeps
// their peak, and refuses an allocation past a limit with LibTorch's own out-of-memory error.
// With it the out-of-memory path (split the batch, retry) runs for real on a machine without a
// GPU. Blocks of a megabyte or more come from a HostBlockPool, which keeps freed ones for reuse;
// empty_cache() gives those back. Memory that oneDNN or BLAS take for their own scratch space is
// not seen.
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
  void reset_peak() {
    peak_.store(allocated_.load());
    peak_held_.store(allocated_.load() + cached());
  }
  int64_t refused() const { return refused_.load(); }  // allocations refused so far
  // Bytes of freed blocks kept for reuse, and giving them back (returns how many).
  int64_t cached() const;
  int64_t release_cached();
  // The peak of live bytes plus cached ones since reset_peak().
  int64_t peak_held() const { return peak_held_.load(); }
  void note_held(int64_t held);

  // Counts `bytes` more, or returns false when that would pass the limit.
  bool reserve(int64_t bytes);
  void release(int64_t bytes) { allocated_.fetch_sub(bytes); }

 private:
  CountingCpuAllocator() = default;

  std::atomic<int64_t> limit_{0};
  std::atomic<int64_t> allocated_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> refused_{0};
  std::atomic<int64_t> peak_held_{0};
};

}  // namespace engine
