#include "engine/runtime/manifest.h"

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "engine/common/error.h"

namespace engine {
namespace {

template <typename T>
T field(const nlohmann::json& json, const std::string& key, const std::string& file) {
  check<ConfigError>(json.contains(key), "{}: required key '{}' is missing", file, key);
  try {
    return json.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw ConfigError(fmt::format("{}: key '{}' has the wrong type ({})", file, key,
                                  json.at(key).type_name()));
  }
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

  Manifest manifest;
  manifest.directory = directory;
  manifest.format_version = field<int>(json, "format_version", file);
  check<ConfigError>(manifest.format_version == kManifestFormatVersion,
                     "{}: format_version {} is not supported; this engine reads version {}",
                     file, manifest.format_version, kManifestFormatVersion);
  manifest.family = field<std::string>(json, "family", file);
  manifest.model_format = field<std::string>(json, "model_format", file);
  manifest.model_file = field<std::string>(json, "model_file", file);
  manifest.model_sha256 = field<std::string>(json, "model_sha256", file);
  manifest.architecture = json.value("architecture", nlohmann::json::object());
  manifest.vocab_size = field<int64_t>(json, "vocab_size", file);
  manifest.max_positions = field<int64_t>(json, "max_positions", file);
  check<ConfigError>(manifest.vocab_size > 0 && manifest.max_positions > 0,
                     "{}: vocab_size and max_positions must be positive", file);
  manifest.special_tokens = json.value("special_tokens", nlohmann::json::object());
  const auto tokenizer = field<nlohmann::json>(json, "tokenizer", file);
  manifest.tokenizer_kind = field<std::string>(tokenizer, "kind", file + " tokenizer");
  manifest.tokenizer_file = field<std::string>(tokenizer, "file", file + " tokenizer");
  manifest.tokenizer = tokenizer;
  manifest.inputs = field<std::vector<std::string>>(json, "inputs", file);
  manifest.outputs = field<std::vector<std::string>>(json, "outputs", file);
  manifest.dtype = field<std::string>(json, "dtype", file);
  manifest.graph_dtype = json.value("graph_dtype", "float32");
  check<ConfigError>(manifest.graph_dtype == "float32" || manifest.graph_dtype == "bfloat16" ||
                         manifest.graph_dtype == "float16",
                     "{}: graph_dtype '{}' is not float32, bfloat16 or float16", file,
                     manifest.graph_dtype);
  check<ConfigError>(manifest.graph_dtype == "float32" || manifest.graph_dtype == manifest.dtype,
                     "{}: a graph traced in {} needs its weights stored in it, not in {} "
                     "(export it again with tools/export.py --dtype)",
                     file, manifest.graph_dtype, manifest.dtype);
  manifest.embedding_parameter = field<std::string>(json, "embedding_parameter", file);
  manifest.embedding_scale = json.value("embedding_scale", "");
  if (json.contains("embedding_table")) {
    const auto table = field<nlohmann::json>(json, "embedding_table", file);
    const std::string where = file + " embedding_table";
    Manifest::EmbeddingTable& stored = manifest.embedding_table;
    stored.file = field<std::string>(table, "file", where);
    stored.dtype = field<std::string>(table, "dtype", where);
    stored.rows = field<int64_t>(table, "rows", where);
    stored.cols = field<int64_t>(table, "cols", where);
    stored.sha256 = field<std::string>(table, "sha256", where);
    check<ConfigError>(stored.dtype == "int8" || stored.dtype == "bfloat16",
                       "{}: dtype '{}' is not int8 or bfloat16", where, stored.dtype);
    check<ConfigError>(stored.rows > 0 && stored.cols > 0, "{}: rows and cols must be positive",
                       where);
    check<ConfigError>(stored.dtype != "int8" || !manifest.embedding_scale.empty(),
                       "{}: an int8 table needs embedding_scale", file);
  }
  manifest.source = json.value("source", nlohmann::json::object());
  manifest.document = std::move(json);
  return manifest;
}

}  // namespace engine
