// engine.json, the manifest of a model bundle: what the model is, how to tokenize for it and how
// to call it. Written by the exporters under models/, read here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace engine {

struct Manifest {
  std::string directory;  // the bundle folder; file names below are relative to it
  int format_version = 0;
  std::string family;
  std::string model_format;  // "torchscript" (model.pt) or "aoti" (model.pt2, a compiled package)
  // A package's target: {"device", "vector_isa", "cpu_features", "torch_version"}; empty for
  // TorchScript.
  nlohmann::json compiled_for;
  std::string model_file;
  std::string model_sha256;
  nlohmann::json architecture;
  int64_t vocab_size = 0;
  int64_t max_positions = 0;
  nlohmann::json special_tokens;
  std::string tokenizer_kind;
  std::string tokenizer_file;
  nlohmann::json tokenizer;  // the whole "tokenizer" object, options included
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
  std::string dtype;  // the stored matrices: "float32" | "bfloat16" | "float16"
  // The dtype the graph was traced in (tools/export.py --dtype): a graph traced in bfloat16 or
  // float16 holds every floating-point tensor in it and runs in that dtype only; one traced in
  // float32 (the default, and bundles exported before the key) runs under autocast in any dtype.
  std::string graph_dtype = "float32";
  std::string embedding_parameter;  // the word-embedding table, checked against vocab_size
  // The table's row scale (a [rows, 1] buffer the graph multiplies each looked-up row by): ones
  // until the table is stored in int8. Empty in bundles exported before it existed.
  std::string embedding_scale;
  // The table stored apart from the model file, raw and row-major, to be mapped into memory.
  struct EmbeddingTable {
    std::string file;   // empty: the table is inside the model file
    std::string dtype;  // "int8" | "bfloat16"
    int64_t rows = 0;
    int64_t cols = 0;
    std::string sha256;
  } embedding_table;
  nlohmann::json source;
  nlohmann::json document;  // the whole file, for keys a family defines for itself

  std::string model_path() const;
  std::string tokenizer_path() const;
  std::string embedding_table_path() const;
};

constexpr int kManifestFormatVersion = 1;

// Reads <directory>/engine.json. Throws ConfigError naming the file and the key at fault.
Manifest read_manifest(const std::string& directory);

}  // namespace engine
