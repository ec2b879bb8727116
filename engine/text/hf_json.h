// Reading one component of a tokenizer.json: its fields with tokenizers' defaults, and errors
// that name the file, the component's JSON path and what was expected.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace engine::hf {

class JsonSite {
 public:
  JsonSite(const std::string& file, const nlohmann::json& node, std::string path)
      : file_(&file), node_(&node), path_(std::move(path)) {}

  const nlohmann::json& node() const { return *node_; }
  const std::string& path() const { return path_; }
  const std::string& file() const { return *file_; }

  bool has(std::string_view key) const;
  // The member `key`; an error when it is missing (or null, unless `null_ok`).
  JsonSite at(std::string_view key, bool null_ok = false) const;
  JsonSite element(size_t index) const;

  bool get_bool(std::string_view key, bool fallback) const;
  std::string get_string(std::string_view key) const;
  std::string get_string(std::string_view key, const std::string& fallback) const;
  int64_t get_int(std::string_view key) const;
  // The component's "type", checked against `supported` (listed in the error).
  std::string type(std::string_view kind, std::initializer_list<std::string_view> supported) const;

  // Throws ConfigError: "<file>: <path>: <what>".
  [[noreturn]] void fail(std::string_view what) const;
  // Throws unless the node is of the JSON kind `is` checks, naming `expected`.
  void expect(bool is, std::string_view expected) const;

 private:
  const std::string* file_;
  const nlohmann::json* node_;
  std::string path_;
};

}  // namespace engine::hf
