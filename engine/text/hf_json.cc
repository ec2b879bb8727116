#include "engine/text/hf_json.h"

#include <fmt/format.h>

#include "engine/common/error.h"

namespace engine::hf {

void JsonSite::fail(std::string_view what) const {
  throw ConfigError(fmt::format("tokenizer.json '{}': {}: {}", *file_, path_, what));
}

void JsonSite::expect(bool is, std::string_view expected) const {
  if (!is) fail(fmt::format("expected {}, found {}", expected, node_->dump().substr(0, 80)));
}

bool JsonSite::has(std::string_view key) const {
  return node_->is_object() && node_->contains(key) && !(*node_)[std::string(key)].is_null();
}

JsonSite JsonSite::at(std::string_view key, bool null_ok) const {
  expect(node_->is_object(), "an object");
  const auto found = node_->find(key);
  if (found == node_->end() || (found->is_null() && !null_ok)) {
    fail(fmt::format("the field \"{}\" is missing", key));
  }
  return JsonSite(*file_, *found, fmt::format("{}.{}", path_, key));
}

JsonSite JsonSite::element(size_t index) const {
  expect(node_->is_array() && index < node_->size(),
         fmt::format("an array of {}+ items", index + 1));
  return JsonSite(*file_, (*node_)[index], fmt::format("{}[{}]", path_, index));
}

bool JsonSite::get_bool(std::string_view key, bool fallback) const {
  if (!has(key)) return fallback;
  const JsonSite value = at(key);
  value.expect(value.node().is_boolean(), "true or false");
  return value.node().get<bool>();
}

std::string JsonSite::get_string(std::string_view key) const {
  const JsonSite value = at(key);
  value.expect(value.node().is_string(), "a string");
  return value.node().get<std::string>();
}

std::string JsonSite::get_string(std::string_view key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

int64_t JsonSite::get_int(std::string_view key) const {
  const JsonSite value = at(key);
  value.expect(value.node().is_number_integer(), "an integer");
  return value.node().get<int64_t>();
}

std::string JsonSite::type(std::string_view kind,
                           std::initializer_list<std::string_view> supported) const {
  const std::string name = get_string("type");
  for (std::string_view known : supported) {
    if (name == known) return name;
  }
  fail(fmt::format("{} type '{}' is not supported; supported: {}", kind, name,
                   fmt::join(supported.begin(), supported.end(), ", ")));
}

}  // namespace engine::hf
