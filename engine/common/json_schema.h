// Checks a JSON document against a JSON Schema (draft 2020-12), for the keywords the project's
// schemas use: type, required, properties, enum, const, minimum, minLength, pattern, items,
// minItems, allOf, if/then/else. Annotations ($schema, $id, title, description) are ignored; any
// other keyword is refused when the schema is loaded, so a schema cannot silently ask for more
// than this checks. The same schema files are checked in Python by the jsonschema package
// (models/common/bundle.py), and a test runs both on the same documents.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace engine {

class JsonSchema {
 public:
  // Throws std::invalid_argument naming the keyword if `schema` uses one this does not check.
  explicit JsonSchema(nlohmann::json schema);

  // The first violation, as "<path>: <what>" (path like tokenizer.kind or inputs[2]) or, at the
  // top level, "<what>"; nothing when `document` conforms.
  std::optional<std::string> first_violation(const nlohmann::json& document) const;

 private:
  nlohmann::json schema_;
};

}  // namespace engine
