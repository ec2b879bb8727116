#include "engine/memory/host_block_pool.h"

#include <sys/mman.h>

#include <algorithm>

namespace engine {
namespace {

constexpr size_t kPage = 4096;

void* map_block(size_t size) {
  void* block = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  // No MADV_HUGEPAGE: a huge page would make the unused tail of a rounded-up block resident.
  return block == MAP_FAILED ? nullptr : block;
}

}  // namespace

size_t HostBlockPool::size_class(size_t bytes) {
  size_t power = 1;
  while (power <= bytes / 2) power *= 2;
  const size_t granularity = std::max(kPage, power / 8);
  return (bytes + granularity - 1) / granularity * granularity;
}

void* HostBlockPool::take(size_t bytes) {
  const size_t size = size_class(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  const auto hit = std::find_if(cached_.begin(), cached_.end(),
                                [&](const Cached& cached) { return cached.size == size; });
  if (hit != cached_.end()) {
    void* block = hit->block;
    cached_total_ -= size;
    *hit = cached_.back();
    cached_.pop_back();
    return block;
  }
  const size_t in_use = mapped_.load() - cached_total_.load();
  evict_until(std::max(peak_in_use_, in_use + size) - size);
  void* block = map_block(size);
  if (block == nullptr && !cached_.empty()) {
    evict_until(0);
    block = map_block(size);
  }
  if (block == nullptr) return nullptr;
  mapped_ += size;
  peak_in_use_ = std::max(peak_in_use_, mapped_.load() - cached_total_.load());
  return block;
}

void HostBlockPool::give_back(void* block, size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  const size_t size = size_class(bytes);
  cached_.push_back({block, size, ++clock_});
  cached_total_ += size;
}

void HostBlockPool::evict_until(size_t mapped_target) {
  while (mapped_.load() > mapped_target && !cached_.empty()) {
    const auto oldest =
        std::min_element(cached_.begin(), cached_.end(),
                         [](const Cached& a, const Cached& b) { return a.freed_at < b.freed_at; });
    ::munmap(oldest->block, oldest->size);
    mapped_ -= oldest->size;
    cached_total_ -= oldest->size;
    *oldest = cached_.back();
    cached_.pop_back();
  }
}

int64_t HostBlockPool::release_cached() {
  std::lock_guard<std::mutex> lock(mutex_);
  const size_t released = cached_total_.load();
  evict_until(mapped_.load() - cached_total_.load());
  peak_in_use_ = mapped_.load();  // from here on, the working set after what was given back
  return static_cast<int64_t>(released);
}

int64_t HostBlockPool::mapped_bytes() const { return static_cast<int64_t>(mapped_.load()); }

int64_t HostBlockPool::cached_bytes() const { return static_cast<int64_t>(cached_total_.load()); }

}  // namespace engine
