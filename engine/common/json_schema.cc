#include "engine/common/json_schema.h"

#include <cmath>
#include <regex>
#include <set>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

namespace engine {
namespace {

using Json = nlohmann::json;

const std::set<std::string>& known_keywords() {
  static const std::set<std::string> keywords = {
      "$schema",    "$id",      "title", "description", "type",      "required",
      "properties", "enum",     "const", "minimum",     "minLength", "pattern",
      "items",      "minItems", "allOf", "if",          "then",      "else"};
  return keywords;
}

void check_keywords(const Json& schema, const std::string& where) {
  if (schema.is_boolean()) return;
  if (!schema.is_object()) throw std::invalid_argument(where + ": a schema must be an object");
  for (const auto& [key, value] : schema.items()) {
    if (known_keywords().count(key) == 0) {
      throw std::invalid_argument(fmt::format("{}: keyword '{}' is not supported", where, key));
    }
    if (key == "properties") {
      for (const auto& [name, child] : value.items()) check_keywords(child, where + "." + name);
    } else if (key == "items" || key == "if" || key == "then" || key == "else") {
      check_keywords(value, where + "/" + key);
    } else if (key == "allOf") {
      for (size_t i = 0; i < value.size(); ++i) {
        check_keywords(value[i], fmt::format("{}/allOf[{}]", where, i));
      }
    }
  }
}

std::string type_of(const Json& value) {
  if (value.is_null()) return "null";
  if (value.is_boolean()) return "boolean";
  if (value.is_number_integer() || value.is_number_unsigned()) return "integer";
  if (value.is_number_float()) {
    // JSON Schema counts 2.0 as an integer; nlohmann parses it as a float.
    const double number = value.get<double>();
    return std::isfinite(number) && std::trunc(number) == number ? "integer" : "number";
  }
  if (value.is_string()) return "string";
  if (value.is_array()) return "array";
  return "object";
}

bool has_type(const Json& value, const std::string& type) {
  const std::string actual = type_of(value);
  return actual == type || (type == "number" && actual == "integer");
}

// JSON Schema equality: numbers compare by value (1 equals 1.0), the rest as JSON.
bool equal(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

// "<path>: " before a violation, or nothing at the top level.
std::string path_of(const std::string& path) { return path.empty() ? "" : path + ": "; }

std::string child_path(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

// UTF-8 code points, as minLength counts them.
size_t code_points(const std::string& text) {
  size_t count = 0;
  for (const unsigned char c : text) count += (c & 0xC0) != 0x80;
  return count;
}

std::optional<std::string> violation(const Json& schema, const Json& value,
                                     const std::string& path);

// The keyword's value in `schema`, or an empty array when the schema has no such keyword.
const Json& keyword(const Json& schema, const char* name) {
  static const Json none = Json::array();
  const auto found = schema.find(name);
  return found == schema.end() ? none : *found;
}

std::optional<std::string> type_violation(const Json& schema, const Json& value,
                                          const std::string& path) {
  if (!schema.contains("type")) return std::nullopt;
  const Json& type = schema["type"];
  const Json types = type.is_array() ? type : Json::array({type});
  for (const Json& t : types) {
    if (has_type(value, t.get<std::string>())) return std::nullopt;
  }
  return fmt::format("{}expected {}, found {}", path_of(path),
                     type.is_array() ? type.dump() : type.get<std::string>(), type_of(value));
}

std::optional<std::string> value_violation(const Json& schema, const Json& value,
                                           const std::string& path) {
  if (schema.contains("const") && !equal(schema["const"], value)) {
    return fmt::format("{}must be {}, not {}", path_of(path), schema["const"].dump(), value.dump());
  }
  if (schema.contains("enum")) {
    bool found = false;
    for (const Json& allowed : schema["enum"]) found = found || equal(allowed, value);
    if (!found) {
      return fmt::format("{}{} is not one of {}", path_of(path), value.dump(),
                         schema["enum"].dump());
    }
  }
  if (schema.contains("minimum") && value.is_number() &&
      value.get<double>() < schema["minimum"].get<double>()) {
    return fmt::format("{}{} is less than {}", path_of(path), value.dump(),
                       schema["minimum"].dump());
  }
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (schema.contains("minLength") && code_points(text) < schema["minLength"].get<size_t>()) {
      return fmt::format("{}shorter than {} characters", path_of(path),
                         schema["minLength"].get<size_t>());
    }
    // ECMAScript regular expressions, as JSON Schema's; a search, not a whole match.
    if (schema.contains("pattern") &&
        !std::regex_search(text, std::regex(schema["pattern"].get<std::string>()))) {
      return fmt::format("{}{} does not match {}", path_of(path), value.dump(),
                         schema["pattern"].get<std::string>());
    }
  }
  return std::nullopt;
}

std::optional<std::string> container_violation(const Json& schema, const Json& value,
                                               const std::string& path) {
  if (value.is_object()) {
    for (const Json& key : keyword(schema, "required")) {
      const std::string name = key.get<std::string>();
      if (!value.contains(name)) {
        return fmt::format("{}required key '{}' is missing", path_of(path), name);
      }
    }
    for (const auto& [name, child] : keyword(schema, "properties").items()) {
      if (!value.contains(name)) continue;
      if (auto found = violation(child, value[name], child_path(path, name))) return found;
    }
  }
  if (value.is_array()) {
    if (schema.contains("minItems") && value.size() < schema["minItems"].get<size_t>()) {
      return fmt::format("{}fewer than {} items", path_of(path), schema["minItems"].dump());
    }
    if (schema.contains("items")) {
      for (size_t i = 0; i < value.size(); ++i) {
        const std::string item = fmt::format("{}[{}]", path, i);
        if (auto found = violation(schema["items"], value[i], item)) return found;
      }
    }
  }
  return std::nullopt;
}

std::optional<std::string> combined_violation(const Json& schema, const Json& value,
                                              const std::string& path) {
  for (const Json& part : keyword(schema, "allOf")) {
    if (auto found = violation(part, value, path)) {
      // A rule's description says why it exists; the violation says where.
      return part.contains("description")
                 ? fmt::format("{} ({})", *found, part["description"].get<std::string>())
                 : found;
    }
  }
  if (schema.contains("if")) {
    const bool holds = !violation(schema["if"], value, path);
    const char* branch = holds ? "then" : "else";
    if (schema.contains(branch)) return violation(schema[branch], value, path);
  }
  return std::nullopt;
}

std::optional<std::string> violation(const Json& schema, const Json& value,
                                     const std::string& path) {
  if (schema.is_boolean()) {
    if (schema.get<bool>()) return std::nullopt;
    return fmt::format("{}not allowed", path_of(path));
  }
  if (auto found = type_violation(schema, value, path)) return found;
  if (auto found = value_violation(schema, value, path)) return found;
  if (auto found = container_violation(schema, value, path)) return found;
  return combined_violation(schema, value, path);
}

}  // namespace

JsonSchema::JsonSchema(Json schema) : schema_(std::move(schema)) {
  check_keywords(schema_, "schema");
}

std::optional<std::string> JsonSchema::first_violation(const Json& document) const {
  return violation(schema_, document, "");
}

}  // namespace engine
