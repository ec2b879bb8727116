// A bounded cache of word -> ids, shared by the threads that encode with one tokenizer. As in
// tokenizers, it stops growing when full and is skipped, not waited for, when another thread
// holds it.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace engine::hf {

class WordCache {
 public:
  static constexpr size_t kCapacity = 10000;
  // Longer words are not cached (they are rare and costly to keep).
  static constexpr size_t kMaxWordBytes = 256;

  // Appends the cached ids of `word` to `ids`; false when it is not cached.
  bool find(std::string_view word, std::vector<int64_t>& ids) const {
    std::shared_lock<std::shared_mutex> lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock()) return false;
    const auto found = entries_.find(word);
    if (found == entries_.end()) return false;
    ids.insert(ids.end(), found->second.begin(), found->second.end());
    return true;
  }

  void insert(std::string_view word, const int64_t* begin, const int64_t* end) const {
    if (word.size() > kMaxWordBytes) return;
    std::unique_lock<std::shared_mutex> lock(mutex_, std::try_to_lock);
    if (!lock.owns_lock() || entries_.size() >= kCapacity || entries_.count(word) > 0) return;
    keys_.emplace_back(word);
    entries_.emplace(keys_.back(), std::vector<int64_t>(begin, end));
  }

 private:
  mutable std::shared_mutex mutex_;
  mutable std::deque<std::string> keys_;
  mutable std::unordered_map<std::string_view, std::vector<int64_t>> entries_;
};

}  // namespace engine::hf
