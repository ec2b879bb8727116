#include "engine/jobs/job_identity.h"

#include <map>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/version.h>

#include "engine/common/cpu_features.h"
#include "engine/common/sha256.h"

namespace engine {
namespace {

constexpr int kIdentityFormat = 1;

nlohmann::json settings_of(const Config& config, const FamilyOptions& options) {
  const TaskConfig& task = config.task;
  const BatchingConfig& batching = config.batching;
  return {{"model.dtype", config.model.dtype},
          {"model.embedding_dtype", config.model.embedding_dtype},
          {"model.graph", config.model.graph},
          {"model.quantize", config.model.quantize},
          {"model.options", options.settings()},
          {"task.kind", task_name(task.kind)},
          {"task.max_length", task.max_length},
          {"task.normalize", task.normalize},
          {"task.top_k", task.top_k},
          {"batching.max_batch_size", batching.max_batch_size},
          {"batching.max_tokens", batching.max_tokens},
          {"batching.window", batching.window},
          {"batching.pad_multiple", batching.pad_multiple},
          {"batching.batch_cost_tokens", batching.batch_cost_tokens},
          {"input.max_line_bytes", config.io.max_line_bytes},
          {"job.block_lines", config.job.block_lines}};
}

// "a.b" -> value for every leaf of `json`.
void flatten(const nlohmann::json& json, const std::string& prefix,
             std::map<std::string, std::string>& leaves) {
  if (json.is_object()) {
    for (const auto& [key, value] : json.items()) {
      flatten(value, prefix.empty() ? key : prefix + "." + key, leaves);
    }
  } else {
    leaves[prefix] = json.is_string() ? json.get<std::string>() : json.dump();
  }
}

// A setting is named as in the config ("task.top_k"), the rest by where it sits ("input.sha256").
std::string key_name(const std::string& key) {
  const std::string settings = "settings.";
  return key.rfind(settings, 0) == 0 ? key.substr(settings.size()) : key;
}

std::string shown(const std::string& value) {
  return value.size() > 16 ? value.substr(0, 12) + "…" : value;
}

}  // namespace

nlohmann::json job_identity(const Config& config, const Manifest& manifest,
                            const FamilyOptions& options, const InputScan& input) {
  nlohmann::json model = {{"family", manifest.family},
                          {"model_sha256", manifest.model_sha256},
                          {"tokenizer_sha256", file_sha256(manifest.tokenizer_path())}};
  if (!manifest.embedding_table.file.empty()) {
    model["embedding_table_sha256"] = manifest.embedding_table.sha256;
  }
  return {{"identity_format", kIdentityFormat},
          {"model", model},
          {"settings", settings_of(config, options)},
          {"input", {{"bytes", input.bytes}, {"lines", input.lines}, {"sha256", input.sha256}}}};
}

std::string identity_difference(const nlohmann::json& recorded, const nlohmann::json& current) {
  std::map<std::string, std::string> before, now;
  flatten(recorded, "", before);
  flatten(current, "", now);
  std::vector<std::string> changes;
  for (const auto& [key, value] : now) {
    const auto old = before.find(key);
    if (old == before.end()) {
      changes.push_back(fmt::format("{} (not recorded, now {})", key_name(key), shown(value)));
    } else if (old->second != value) {
      changes.push_back(
          fmt::format("{} (was {}, now {})", key_name(key), shown(old->second), shown(value)));
    }
  }
  for (const auto& [key, value] : before) {
    if (now.count(key) == 0) {
      changes.push_back(fmt::format("{} (was {}, now absent)", key_name(key), shown(value)));
    }
  }
  return fmt::format("{}", fmt::join(changes, ", "));
}

nlohmann::json run_numerics(const c10::Device& device, int threads) {
  nlohmann::json numerics = {{"device", c10::DeviceTypeName(device.type(), /*lower_case=*/true)}};
  if (device.is_cpu()) {
    numerics["cpu_isa"] = cpu_isa_name();
    numerics["threads"] = threads;
  }
  numerics["torch"] = TORCH_VERSION;
  return numerics;
}

std::string numerics_difference(const nlohmann::json& recorded, const nlohmann::json& current) {
  if (recorded.is_null() || current.is_null()) return "";
  return identity_difference(recorded, current);
}

}  // namespace engine
