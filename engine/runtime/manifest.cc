#include "engine/runtime/manifest.h"

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "engine/common/error.h"
#include "engine/common/json_schema.h"
#include "engine/runtime/manifest_schema.h"

namespace engine {
namespace {

const JsonSchema& manifest_schema() {
  static const JsonSchema schema(nlohmann::json::parse(manifest_schema_text()));
  return schema;
}

}  // namespace

std::string Manifest::model_path() const {
  return (std::filesystem::path(directory) / model_file).string();
}

std::string Manifest::tokenizer_path() const {
  return (std::filesystem::path(directory) / tokenizer_file).string();
}

std::string Manifest::embedding_table_path() const {
  return (std::filesystem::path(directory) / embedding_table.file).string();
}

Manifest read_manifest(const std::string& directory) {
  const std::string file = (std::filesystem::path(directory) / "engine.json").string();
  std::ifstream stream(file);
  check<ConfigError>(stream.good(),
                     "{} cannot be read: a model bundle is a folder with engine.json, model.pt "
                     "and the tokenizer; make one with tools/export.py",
                     file);
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(stream);
  } catch (const nlohmann::json::parse_error& error) {
    throw ConfigError(fmt::format("{}: not valid JSON: {}", file, error.what()));
  }
  check<ConfigError>(json.is_object(), "{}: expected a JSON object", file);

  // Keys, types, values and the rules between them: models/common/manifest.schema.json, the
  // file the exporters check before they write.
  if (const auto violation = manifest_schema().first_violation(json)) {
    throw ConfigError(fmt::format("{}: {}", file, *violation));
  }
  Manifest manifest;
  manifest.directory = directory;
  manifest.format_version = json.at("format_version").get<int>();
  manifest.family = json.at("family").get<std::string>();
  manifest.model_format = json.at("model_format").get<std::string>();
  manifest.model_file = json.at("model_file").get<std::string>();
  manifest.compiled_for = json.value("compiled_for", nlohmann::json::object());
  manifest.model_sha256 = json.at("model_sha256").get<std::string>();
  manifest.architecture = json.value("architecture", nlohmann::json::object());
  manifest.vocab_size = json.at("vocab_size").get<int64_t>();
  manifest.max_positions = json.at("max_positions").get<int64_t>();
  manifest.special_tokens = json.value("special_tokens", nlohmann::json::object());
  manifest.tokenizer = json.at("tokenizer");
  manifest.tokenizer_kind = manifest.tokenizer.at("kind").get<std::string>();
  manifest.tokenizer_file = manifest.tokenizer.at("file").get<std::string>();
  manifest.inputs = json.at("inputs").get<std::vector<std::string>>();
  manifest.outputs = json.at("outputs").get<std::vector<std::string>>();
  manifest.dtype = json.at("dtype").get<std::string>();
  manifest.graph_dtype = json.value("graph_dtype", "float32");
  manifest.embedding_parameter = json.at("embedding_parameter").get<std::string>();
  manifest.embedding_scale = json.value("embedding_scale", "");
  if (json.contains("embedding_table")) {
    const nlohmann::json& table = json.at("embedding_table");
    Manifest::EmbeddingTable& stored = manifest.embedding_table;
    stored.file = table.at("file").get<std::string>();
    stored.dtype = table.at("dtype").get<std::string>();
    stored.rows = table.at("rows").get<int64_t>();
    stored.cols = table.at("cols").get<int64_t>();
    stored.sha256 = table.at("sha256").get<std::string>();
  }
  manifest.source = json.value("source", nlohmann::json::object());
  manifest.document = std::move(json);
  return manifest;
}

}  // namespace engine
