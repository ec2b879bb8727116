// The JSON Schema checker behind engine.json (engine/common/json_schema.h): each keyword it
// implements on small schemas, and agreement with the jsonschema package on the manifest schema
// itself, over every fixture bundle's engine.json as exported and broken in each way
// (tests/reference/manifest_schema_cases.py).
#include "engine/common/json_schema.h"

#include <gtest/gtest.h>

#include <fstream>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/runtime/manifest_schema.h"
#include "tests/support/test_support.h"

namespace engine {
namespace {

using Json = nlohmann::json;

std::string violation_of(const JsonSchema& schema, const Json& document) {
  return schema.first_violation(document).value_or("");
}

TEST(JsonSchemaTest, EachKeywordRefusesWhatItShouldAndNamesWhere) {
  const JsonSchema schema(Json::parse(R"({
    "type": "object",
    "required": ["name", "size"],
    "properties": {
      "name": {"type": "string", "minLength": 2, "pattern": "^[a-z]+$"},
      "size": {"type": "integer", "minimum": 1},
      "kind": {"enum": ["a", "b"]},
      "version": {"const": 3},
      "tags": {"type": "array", "minItems": 1, "items": {"type": "string"}},
      "ratio": {"type": ["number", "null"]}
    },
    "allOf": [{"description": "kind b needs tags",
               "if": {"required": ["kind"], "properties": {"kind": {"const": "b"}}},
               "then": {"required": ["tags"]}}]
  })"));
  const Json good = Json::parse(R"({"name": "ab", "size": 2, "kind": "a", "version": 3})");
  EXPECT_EQ(violation_of(schema, good), "");
  const auto broken = [&](const std::string& key, const Json& value) {
    Json document = good;
    if (value.is_discarded()) {
      document.erase(key);
    } else {
      document[key] = value;
    }
    return violation_of(schema, document);
  };
  EXPECT_EQ(broken("size", Json(Json::value_t::discarded)), "required key 'size' is missing");
  EXPECT_EQ(broken("size", "many"), "size: expected integer, found string");
  EXPECT_EQ(broken("size", 2.0), "") << "2.0 is an integer to JSON Schema";
  EXPECT_EQ(broken("size", 2.5), "size: expected integer, found number");
  EXPECT_EQ(broken("size", 0), "size: 0 is less than 1");
  EXPECT_EQ(broken("name", "a"), "name: shorter than 2 characters");
  EXPECT_EQ(broken("name", "AB"), "name: \"AB\" does not match ^[a-z]+$");
  EXPECT_EQ(broken("kind", "c"), "kind: \"c\" is not one of [\"a\",\"b\"]");
  EXPECT_EQ(broken("version", 3.0), "") << "numbers compare by value";
  EXPECT_EQ(broken("version", 4), "version: must be 3, not 4");
  EXPECT_EQ(broken("tags", Json::array()), "tags: fewer than 1 items");
  EXPECT_EQ(broken("tags", Json::array({"x", 5})), "tags[1]: expected string, found integer");
  EXPECT_EQ(broken("ratio", nullptr), "");
  EXPECT_EQ(broken("ratio", "half"), "ratio: expected [\"number\",\"null\"], found string");
  EXPECT_EQ(broken("kind", "b"), "required key 'tags' is missing (kind b needs tags)");
  EXPECT_EQ(broken("other", Json::object()), "") << "keys not named are allowed";
  EXPECT_EQ(violation_of(schema, Json::array()), "expected object, found array");
}

TEST(JsonSchemaTest, AKeywordItDoesNotCheckIsRefusedWhenTheSchemaIsLoaded) {
  try {
    JsonSchema(Json::parse(R"({"properties": {"a": {"maxLength": 3}}})"));
    FAIL() << "maxLength was accepted but is not checked";
  } catch (const std::invalid_argument& error) {
    EXPECT_EQ(std::string(error.what()), "schema.a: keyword 'maxLength' is not supported");
  }
}

// The verdicts of the jsonschema package (Draft 2020-12) on the same manifests: the schema means
// the same to the exporters and to the engine.
TEST(JsonSchemaTest, TheEngineAndTheExportersAgreeOnEveryManifest) {
  const JsonSchema schema(Json::parse(manifest_schema_text()));
  std::ifstream stream(testing::fixture_path("manifest_schema_cases.json"));
  ASSERT_TRUE(stream.good());
  const Json cases = Json::parse(stream);
  ASSERT_GT(cases.size(), 200u);
  int valid = 0;
  for (const Json& c : cases) {
    const std::string name =
        c.at("bundle").get<std::string>() + ": " + c.at("name").get<std::string>();
    const auto violation = schema.first_violation(c.at("document"));
    EXPECT_EQ(!violation.has_value(), c.at("valid").get<bool>())
        << name << "\n  engine: " << violation.value_or("valid")
        << "\n  jsonschema: " << c.at("message").get<std::string>();
    valid += c.at("valid").get<bool>();
  }
  EXPECT_GE(valid, 9) << "every fixture bundle as exported is valid";
}

}  // namespace
}  // namespace engine
