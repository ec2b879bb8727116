#include "engine/config/config_node.h"

#include <cmath>
#include <filesystem>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "engine/common/error.h"
#include "engine/config/yaml_tree.h"

namespace engine {
namespace {

bool is_null_value(const YAML::Node& node) { return !node.IsDefined() || node.IsNull(); }

}  // namespace

ConfigNode::ConfigNode(std::shared_ptr<const Tree> tree, std::string key_path,
                       std::shared_ptr<const ConfigSource> source)
    // A missing key gives an "invalid" yaml-cpp node that throws on most calls; keep a null one.
    : tree_(tree->node.IsDefined() ? std::move(tree) : std::make_shared<const Tree>()),
      key_path_(std::move(key_path)),
      source_(std::move(source)) {
  const YAML::Node& node = tree_->node;
  if (is_null_value(node)) return;
  if (!node.IsMap()) {
    std::string what = key_path_.empty() ? "the top level" : "'" + key_path_ + "'";
    int line = node.Mark().is_null() ? 0 : node.Mark().line + 1;
    throw ConfigError(
        fmt::format("{}:{}: {} must be a mapping of keys to values", source_->file, line, what));
  }
}

ConfigNode ConfigNode::empty(const std::string& key_path) {
  return make_config_node(YAML::Node(), key_path, std::make_shared<ConfigSource>());
}

std::string ConfigNode::full_key(const std::string& key) const {
  return key_path_.empty() ? key : key_path_ + "." + key;
}

std::string ConfigNode::where(const std::string& key) const {
  const YAML::Node& node = tree_->node;
  const std::string full = full_key(key);
  if (source_->overridden_keys.count(full)) return "--set " + full;
  // Copy-constructed, never assigned: assigning an absent key's node throws in yaml-cpp.
  const YAML::Node& const_node = node;
  const YAML::Node found = is_null_value(node) ? YAML::Node() : const_node[key];
  YAML::Mark mark = found.IsDefined() && !found.Mark().is_null() ? found.Mark() : node.Mark();
  if (mark.is_null()) return fmt::format("{} ({})", source_->file, full);
  return fmt::format("{}:{} ({})", source_->file, mark.line + 1, full);
}

void ConfigNode::fail(const std::string& key, const std::string& message) const {
  throw ConfigError(fmt::format("{}: {}", where(key), message));
}

bool ConfigNode::has(const std::string& key) const {
  const YAML::Node& node = tree_->node;
  if (is_null_value(node)) return false;
  const YAML::Node& const_node = node;
  return !is_null_value(const_node[key]);
}

std::optional<std::string> ConfigNode::value(const std::string& key) const {
  read_keys_.insert(key);
  const YAML::Node& const_node = tree_->node;
  if (is_null_value(const_node)) return std::nullopt;
  const YAML::Node found = const_node[key];
  if (is_null_value(found)) return std::nullopt;
  if (!found.IsScalar()) {
    fail(key,
         "expected a single value, found a " + std::string(found.IsMap() ? "mapping" : "list"));
  }
  return found.Scalar();
}

std::string ConfigNode::string(const std::string& key, std::optional<std::string> fallback) const {
  std::optional<std::string> found = value(key);
  if (!found) {
    if (!fallback) fail(key, "required key is missing");
    return *fallback;
  }
  return *found;
}

template <typename T>
T ConfigNode::typed(const std::string& key, std::optional<T> fallback, const char* expected) const {
  const std::optional<std::string> found = value(key);
  if (!found) {
    if (!fallback) fail(key, "required key is missing");
    return *fallback;
  }
  try {
    return YAML::Node(*found).as<T>();
  } catch (const YAML::Exception&) {
    fail(key, fmt::format("expected {}, found '{}'", expected, *found));
  }
}

int64_t ConfigNode::integer(const std::string& key, int64_t min, int64_t max,
                            std::optional<int64_t> fallback) const {
  const auto result = typed<int64_t>(key, fallback, "an integer");
  if (result < min || result > max) {
    fail(key, fmt::format("value {} is out of range; expected {} to {}", result, min, max));
  }
  return result;
}

double ConfigNode::number(const std::string& key, double min, double max,
                          std::optional<double> fallback) const {
  const auto result = typed<double>(key, fallback, "a number");
  if (!std::isfinite(result) || result < min || result > max) {
    fail(key, fmt::format("value {} is out of range; expected {} to {}", result, min, max));
  }
  return result;
}

bool ConfigNode::boolean(const std::string& key, std::optional<bool> fallback) const {
  return typed<bool>(key, fallback, "true or false");
}

std::string ConfigNode::choice(const std::string& key, const std::vector<std::string>& allowed,
                               std::optional<std::string> fallback) const {
  std::string result = string(key, std::move(fallback));
  for (const auto& option : allowed) {
    if (option == result) return result;
  }
  fail(key, fmt::format("'{}' is not one of: {}", result, fmt::join(allowed, ", ")));
}

std::string ConfigNode::path(const std::string& key, std::optional<std::string> fallback) const {
  std::string text = string(key, std::move(fallback));
  if (text.empty()) return text;
  std::filesystem::path result(text);
  if (result.is_relative() && !source_->overridden_keys.count(full_key(key))) {
    result = std::filesystem::path(source_->file).parent_path() / result;
  }
  return result.lexically_normal().string();
}

int64_t ConfigNode::bytes(const std::string& key, std::optional<int64_t> fallback) const {
  const std::optional<std::string> found = value(key);
  if (!found) {
    if (!fallback) fail(key, "required key is missing");
    return *fallback;
  }
  std::optional<int64_t> parsed = parse_byte_count(*found);
  if (!parsed) {
    fail(key,
         fmt::format("expected a byte count such as 1048576, 512MB or 2GiB, found '{}'", *found));
  }
  return *parsed;
}

std::vector<std::string> ConfigNode::strings(
    const std::string& key, std::optional<std::vector<std::string>> fallback) const {
  read_keys_.insert(key);
  const YAML::Node& const_node = tree_->node;
  const YAML::Node found = is_null_value(const_node) ? YAML::Node() : const_node[key];
  if (is_null_value(found)) {
    if (!fallback) fail(key, "required key is missing");
    return *fallback;
  }
  std::vector<std::string> items;
  if (found.IsSequence()) {
    for (const auto& item : found) {
      if (!item.IsScalar()) fail(key, "expected a list of single values");
      items.push_back(item.Scalar());
    }
  } else if (found.IsScalar()) {
    std::stringstream stream(found.Scalar());
    for (std::string item; std::getline(stream, item, ',');) {
      item.erase(0, item.find_first_not_of(' '));
      item.erase(item.find_last_not_of(' ') + 1);
      items.push_back(item);
    }
  } else {
    fail(key, "expected a list, found a mapping");
  }
  return items;
}

ConfigNode ConfigNode::section(const std::string& key) const {
  const YAML::Node& node = tree_->node;
  read_keys_.insert(key);
  return make_config_node(is_null_value(node) ? YAML::Node() : node[key], full_key(key), source_);
}

void ConfigNode::reject_unknown_keys() const {
  const YAML::Node& node = tree_->node;
  if (is_null_value(node)) return;
  for (const auto& entry : node) {
    const std::string key = entry.first.Scalar();
    if (read_keys_.count(key)) continue;
    std::vector<std::string> known(read_keys_.begin(), read_keys_.end());
    int line = entry.first.Mark().is_null() ? 0 : entry.first.Mark().line + 1;
    std::string place = source_->overridden_keys.count(full_key(key))
                            ? "--set " + full_key(key)
                            : fmt::format("{}:{} ({})", source_->file, line, full_key(key));
    throw ConfigError(fmt::format("{}: unknown key '{}'; known keys here: {}", place, key,
                                  fmt::join(known, ", ")));
  }
}

std::optional<int64_t> parse_byte_count(const std::string& text) {
  size_t consumed = 0;
  double amount = 0;
  try {
    amount = std::stod(text, &consumed);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  std::string unit = text.substr(consumed);
  while (!unit.empty() && unit.front() == ' ') unit.erase(unit.begin());
  static const std::pair<const char*, double> kUnits[] = {{"", 1},
                                                          {"B", 1},
                                                          {"KB", 1e3},
                                                          {"MB", 1e6},
                                                          {"GB", 1e9},
                                                          {"TB", 1e12},
                                                          {"KiB", 1024.0},
                                                          {"MiB", 1048576.0},
                                                          {"GiB", 1073741824.0},
                                                          {"TiB", 1099511627776.0}};
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) {
      double result = amount * factor;
      if (!std::isfinite(result) || result < 0 || result > 9.2e18) return std::nullopt;
      return static_cast<int64_t>(result);
    }
  }
  return std::nullopt;
}

}  // namespace engine
