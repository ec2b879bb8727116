// Typed, located access to one mapping of a YAML config. Every value read is checked for type and
// range, every error names the file, the line and the full key path, and keys that were never
// read are reported as unknown, so a typo cannot be silently ignored.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace engine {

// Where a config tree came from: the file and which key paths were replaced by --set.
struct ConfigSource {
  std::string file;
  std::set<std::string> overridden_keys;
};

class ConfigNode {
 public:
  // The parsed tree under a node; complete only inside engine/config, which alone sees yaml-cpp
  // (yaml_tree.h).
  struct Tree;
  ConfigNode(std::shared_ptr<const Tree> tree, std::string key_path,
             std::shared_ptr<const ConfigSource> source);
  // A mapping with no keys at `key_path` (every read gives its fallback): the options of a family
  // made without a config, in tests and `engine tokenize`.
  static ConfigNode empty(const std::string& key_path);

  bool has(const std::string& key) const;
  std::string string(const std::string& key, std::optional<std::string> fallback) const;
  int64_t integer(const std::string& key, int64_t min, int64_t max,
                  std::optional<int64_t> fallback) const;
  double number(const std::string& key, double min, double max,
                std::optional<double> fallback) const;
  bool boolean(const std::string& key, std::optional<bool> fallback) const;
  std::string choice(const std::string& key, const std::vector<std::string>& allowed,
                     std::optional<std::string> fallback) const;
  // A path value: relative paths are resolved against the config file's folder, or against the
  // working directory when the value came from --set.
  std::string path(const std::string& key, std::optional<std::string> fallback) const;
  // A byte count: an integer or a string with a unit (512MB, 2GiB).
  int64_t bytes(const std::string& key, std::optional<int64_t> fallback) const;
  // A list of values: a YAML sequence of scalars, or one comma-separated scalar (as --set gives).
  std::vector<std::string> strings(const std::string& key,
                                   std::optional<std::vector<std::string>> fallback) const;
  // A nested mapping; an absent key gives an empty one.
  ConfigNode section(const std::string& key) const;

  // Throws ConfigError naming every key of this mapping that no accessor asked for.
  void reject_unknown_keys() const;

  // "configs/rerank.yaml:12 (task.top_k)" or "--set task.top_k".
  std::string where(const std::string& key) const;
  std::string full_key(const std::string& key) const;
  const std::string& key_path() const { return key_path_; }

 private:
  // The scalar at `key` (nullopt when absent or null), after recording the key as read.
  std::optional<std::string> value(const std::string& key) const;
  template <typename T>
  T typed(const std::string& key, std::optional<T> fallback, const char* expected) const;
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

  std::shared_ptr<const Tree> tree_;
  std::string key_path_;
  std::shared_ptr<const ConfigSource> source_;
  mutable std::set<std::string> read_keys_;
};

// Parses "1048576", "512MB", "1.5GiB" (decimal and binary units). Returns nullopt when malformed.
std::optional<int64_t> parse_byte_count(const std::string& text);

}  // namespace engine
