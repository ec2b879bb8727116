#include "engine/config/config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <fmt/format.h>

#include "engine/common/error.h"
#include "engine/config/config_node.h"
#include "engine/config/yaml_tree.h"

namespace engine {
namespace {

constexpr int64_t kMaxInt = 1LL << 31;

// Sets root[a][b][c] = value for "a.b.c=value", creating mappings on the way. The value is parsed
// as YAML, so "--set task.top_k=5" gives an integer and "--set model.path=x" a string.
void apply_override(YAML::Node& root, const std::string& assignment, ConfigSource& source) {
  const size_t equals = assignment.find('=');
  check<ConfigError>(equals != std::string::npos && equals > 0,
                     "--set '{}': expected key.path=value", assignment);
  const std::string key_path = assignment.substr(0, equals);
  const std::string text = assignment.substr(equals + 1);
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::Exception& error) {
    throw ConfigError(
        fmt::format("--set {}: cannot parse value '{}': {}", key_path, text, error.msg));
  }
  if (!value.IsDefined() || value.IsNull()) value = YAML::Node(text);

  std::vector<std::string> keys;
  std::stringstream stream(key_path);
  for (std::string key; std::getline(stream, key, '.');) {
    check<ConfigError>(!key.empty(), "--set '{}': empty key in the key path", assignment);
    keys.push_back(key);
  }
  YAML::Node node = root;
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    YAML::Node child = node[keys[i]];
    if (!child.IsDefined() || child.IsNull()) child = YAML::Node(YAML::NodeType::Map);
    check<ConfigError>(child.IsMap(), "--set {}: '{}' is not a mapping", key_path, keys[i]);
    node[keys[i]] = child;
    node.reset(child);
  }
  node[keys.back()] = value;
  source.overridden_keys.insert(key_path);
}

int parse_threads(const ConfigNode& model) {
  if (!model.has("threads") || model.string("threads", "auto") == "auto") return 0;
  return static_cast<int>(model.integer("threads", 1, 4096, std::nullopt));
}

void read_model(const ConfigNode& node, ModelConfig& model) {
  model.path = node.path("path", std::nullopt);
  check<ConfigError>(std::filesystem::is_directory(model.path),
                     "{}: model bundle directory '{}' does not exist", node.where("path"),
                     model.path);
  model.device = node.string("device", "auto");
  const std::string& device = model.device;
  bool device_ok = device == "auto" || device == "cpu" || device == "cuda" ||
                   (device.rfind("cuda:", 0) == 0 && device.size() > 5 &&
                    device.find_first_not_of("0123456789", 5) == std::string::npos);
  check<ConfigError>(device_ok, "{}: '{}' is not a device; expected auto, cpu, cuda or cuda:N",
                     node.where("device"), device);
  model.dtype = node.choice("dtype", {"bundle", "fp32", "fp16", "bf16", "auto"}, "bundle");
  model.embedding_dtype =
      node.choice("embedding_dtype", {"same", "fp32", "fp16", "bf16", "int8"}, "same");
  model.threads = parse_threads(node);
  model.verify_checksum = node.boolean("verify_checksum", true);
  model.graph = node.choice("graph", {"onednn", "plain", "fused"}, "onednn");
  model.quantize = node.choice("quantize", {"none", "int8"}, "none");
  check<ConfigError>(model.quantize == "none" || model.graph == "onednn",
                     "{}: quantize int8 needs graph: onednn (it rewrites the graph's linear "
                     "layers), not graph: {}",
                     node.where("quantize"), model.graph);
  model.family_options = std::make_shared<const ConfigNode>(node.section("options"));
}

void read_task(const ConfigNode& node, TaskConfig& task) {
  const std::string kind = node.choice("kind", {"rerank", "score", "embed"}, std::nullopt);
  task.kind = kind == "rerank"  ? TaskKind::kRerank
              : kind == "score" ? TaskKind::kScore
                                : TaskKind::kEmbed;
  // 16 is the least length at which a query capped at 3/4 still leaves room for special tokens.
  task.max_length = static_cast<int>(node.integer("max_length", 16, 1 << 20, 512));
  task.normalize = node.boolean("normalize", false);
  task.top_k = static_cast<int>(node.integer("top_k", 0, kMaxInt, 0));
  // Keys that moved to the family that reads them.
  for (const char* key : {"long_passages", "chunk_overlap", "max_passage_chars"}) {
    check<ConfigError>(!node.has(key),
                       "{}: this is now a cross-encoder option: write it as model.options.{} "
                       "(docs/models.md)",
                       node.where(key), key);
  }
}

void read_batching(const ConfigNode& node, BatchingConfig& batching) {
  batching.max_batch_size = static_cast<int>(node.integer("max_batch_size", 1, 1 << 16, 32));
  batching.max_tokens = node.integer("max_tokens", 16, 1LL << 40, 16384);
  batching.window = static_cast<int>(node.integer("window", 1, 1 << 24, 8192));
  batching.pad_multiple = static_cast<int>(node.integer("pad_multiple", 1, 512, 8));
  batching.batch_cost_tokens = node.string("batch_cost_tokens", "auto") == "auto"
                                   ? -1
                                   : node.integer("batch_cost_tokens", 0, 1LL << 40, 0);
}

void read_io(const ConfigNode& input, const ConfigNode& output, IoConfig& io, ConfigUse use) {
  io.max_line_bytes = input.bytes("max_line_bytes", 64LL << 20);
  check<ConfigError>(io.max_line_bytes >= 1024, "{}: must be at least 1024 bytes",
                     input.where("max_line_bytes"));
  if (use == ConfigUse::kServe && !input.has("path") && !output.has("path")) {
    input.path("path", "");  // read: not an unknown key
    output.path("path", "");
    return;
  }
  io.input_path = input.path("path", std::nullopt);
  check<ConfigError>(std::filesystem::is_regular_file(io.input_path),
                     "{}: input file '{}' does not exist", input.where("path"), io.input_path);
  io.output_path = output.path("path", std::nullopt);
  auto parent = std::filesystem::path(io.output_path).parent_path();
  check<ConfigError>(
      parent.empty() || std::filesystem::is_directory(parent) || !std::filesystem::exists(parent),
      "{}: '{}' is not a directory", output.where("path"), parent.string());
}

void read_memory(const ConfigNode& node, MemoryConfig& memory) {
  memory.limit = node.bytes("limit", 0);
  // A plain number up to 1 is a fraction of the device's memory; anything else a byte count.
  if (node.has("budget")) {
    const std::string text = node.string("budget", std::nullopt);
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    const bool plain_number = end != text.c_str() && *end == '\0';
    if (plain_number && value > 0 && value <= 1) {
      memory.budget_fraction = value;
    } else {
      memory.budget = node.bytes("budget", std::nullopt);
    }
  }
  const std::string empty =
      node.choice("empty_cache", {"never", "after_request", "when_unused_above"}, "never");
  memory.empty_cache = empty == "never"           ? EmptyCache::kNever
                       : empty == "after_request" ? EmptyCache::kAfterRequest
                                                  : EmptyCache::kWhenUnusedAbove;
  memory.empty_cache_above = node.bytes("empty_cache_above", 1LL << 30);
  memory.warmup = node.boolean("warmup", false);
}

void read_serve(const ConfigNode& node, ServeConfig& serve) {
  serve.host = node.string("host", "127.0.0.1");
  serve.port = static_cast<int>(node.integer("port", 0, 65535, 8080));
  serve.max_wait_ms = node.number("max_wait_ms", 0, 10000, 5);
  serve.max_queue_sequences = node.integer("max_queue_sequences", 1, 1LL << 30, 4096);
  serve.max_client_batch_size =
      static_cast<int>(node.integer("max_client_batch_size", 1, 1 << 20, 512));
  serve.max_body_bytes = node.bytes("max_body_bytes", 16LL << 20);
  check<ConfigError>(serve.max_body_bytes >= 1024, "{}: must be at least 1024 bytes",
                     node.where("max_body_bytes"));
  serve.http_threads = static_cast<int>(node.integer("http_threads", 1, 4096, 128));
  serve.io_threads = static_cast<int>(node.integer("io_threads", 1, 64, 1));
  serve.max_connections = node.integer("max_connections", 1, 1 << 20, 10000);
  serve.head_timeout_s = node.number("head_timeout_s", 0.1, 3600, 10);
  serve.body_timeout_s = node.number("body_timeout_s", 0.1, 3600, 30);
  serve.idle_timeout_s = node.number("idle_timeout_s", 0.1, 86400, 60);
}

}  // namespace

const char* task_name(TaskKind kind) {
  switch (kind) {
    case TaskKind::kRerank:
      return "rerank";
    case TaskKind::kScore:
      return "score";
    case TaskKind::kEmbed:
      return "embed";
  }
  return "unknown";
}

Config parse_config(const std::string& yaml_text, const std::string& file,
                    const std::vector<std::string>& overrides, ConfigUse use) {
  auto source = std::make_shared<ConfigSource>();
  source->file = file;
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& error) {
    throw ConfigError(
        fmt::format("{}:{}: not valid YAML: {}", file, error.mark.line + 1, error.msg));
  }
  if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  check<ConfigError>(root.IsMap(), "{}: the top level must be a mapping of sections", file);
  for (const auto& assignment : overrides) apply_override(root, assignment, *source);

  Config config;
  config.source_file = file;
  const ConfigNode top = make_config_node(root, "", source);
  const ConfigNode model = top.section("model"), task = top.section("task"),
                   batching = top.section("batching"), input = top.section("input"),
                   output = top.section("output"), memory = top.section("memory"),
                   job = top.section("job"), serve = top.section("serve"),
                   logging = top.section("logging");
  top.reject_unknown_keys();
  read_model(model, config.model);
  read_task(task, config.task);
  read_batching(batching, config.batching);
  read_io(input, output, config.io, use);
  read_memory(memory, config.memory);
  config.job.block_lines = job.integer("block_lines", 0, 1LL << 40, 0);
  config.job.resume = job.boolean("resume", true);
  config.job.max_retries = static_cast<int>(job.integer("max_retries", 0, 1000, 2));
  read_serve(serve, config.serve);
  config.logging.level =
      logging.choice("level", {"trace", "debug", "info", "warn", "error", "off"}, "info");
  config.logging.progress_interval_s = logging.number("progress_interval_s", 0, 86400, 5.0);
  for (const ConfigNode* section :
       {&model, &task, &batching, &input, &output, &memory, &job, &serve, &logging}) {
    section->reject_unknown_keys();
  }
  return config;
}

Config load_config(const std::string& file, const std::vector<std::string>& overrides,
                   ConfigUse use) {
  std::ifstream stream(file);
  check<ConfigError>(stream.good(), "config file '{}' cannot be read", file);
  std::stringstream text;
  text << stream.rdbuf();
  return parse_config(text.str(), file, overrides, use);
}

}  // namespace engine
