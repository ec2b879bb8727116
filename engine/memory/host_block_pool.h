// Large CPU blocks kept for reuse, as LibTorch's CUDA caching allocator keeps device blocks.
//
// Why: glibc serves a freed multi-megabyte activation from its heap the next time, but raises its
// mmap threshold as it goes and keeps what it freed, so a transformer's per-layer activations
// leave the heap fragmented. On a bce-reranker-base-sized model at 512 tokens the process grew by
// about 200 MiB in the first forward pass with only 17 MiB of tensors alive at any time
// (docs/memory.md). Mapping each large block afresh instead returns it, but every forward pass
// then faults its pages in again, about 30% slower on that model. The pool maps large blocks
// itself, keeps freed ones by size class and hands them out again, and never maps more than the
// most it had in use at once since it was last emptied: memory stays at the working set and pages
// are touched once. The engine empties it after loading a model, whose casts free whole tensors.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace engine {

class HostBlockPool {
 public:
  // Smaller requests are left to the C library.
  static constexpr size_t kMinPooled = size_t{256} << 10;

  // The size class of a request: rounded up to an eighth of its power of two (at most 12.5%
  // more), in whole pages.
  static size_t size_class(size_t bytes);

  HostBlockPool() = default;
  HostBlockPool(const HostBlockPool&) = delete;
  HostBlockPool& operator=(const HostBlockPool&) = delete;

  // A block of size_class(bytes) bytes: a cached one of that class, or a new mapping. Cached blocks
  // of other classes are unmapped first when the new one would take the pool past the most it
  // had in use at once since release_cached(). Returns nullptr when the system has no memory.
  void* take(size_t bytes);
  // Keeps a block from take() for reuse; `bytes` is what was asked of take().
  void give_back(void* block, size_t bytes);
  // Unmaps every cached block and starts the in-use peak afresh; returns the bytes given back.
  int64_t release_cached();

  int64_t mapped_bytes() const;  // in use and cached
  int64_t cached_bytes() const;

 private:
  struct Cached {
    void* block;
    size_t size;
    uint64_t freed_at;  // for evicting the least recently freed first
  };

  void evict_until(size_t mapped_target);  // holds mutex_

  mutable std::mutex mutex_;
  std::vector<Cached> cached_;
  // Written under mutex_, read without it.
  std::atomic<size_t> mapped_{0};
  std::atomic<size_t> cached_total_{0};
  size_t peak_in_use_ = 0;
  uint64_t clock_ = 0;
};

}  // namespace engine
