#include "engine/cli/commands.h"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/common/cpu_features.h"
#include "engine/common/error.h"
#include "engine/jobs/job.h"
#include "engine/memory/device_memory.h"
#include "engine/runtime/family_adapter.h"
#include "engine/runtime/model_bundle.h"
#include "engine/serve/server.h"

namespace engine {
namespace {

int64_t parameter_bytes(const Model& model) {
  int64_t bytes = 0;
  for (const auto& [name, tensor] : model.named_tensors()) {
    bytes += static_cast<int64_t>(tensor.numel() * tensor.element_size());
  }
  return bytes;
}

}  // namespace

int check_command(const std::string& config_file, const std::vector<std::string>& overrides) {
  const Config config = open_config({config_file, overrides});
  const std::unique_ptr<JobRuntime> job = load_runtime(config);
  const Manifest& manifest = job->bundle.manifest;
  const int64_t weights = parameter_bytes(*job->bundle.model);
  // Activations are a small multiple of one layer's hidden states per token in the batch.
  const int64_t hidden = manifest.architecture.value("hidden_size", 0);
  const int64_t activations = config.batching.max_tokens * hidden * 4 * 16;
  std::cout << "config:      " << config.source_file << "\n"
            << "model:       " << manifest.directory << " (family " << manifest.family << ", "
            << manifest.source.value("model_class", std::string("?")) << ")\n"
            << "adapter:     " << job->adapter->describe() << "\n"
            << "tokenizer:   " << manifest.tokenizer_kind << ", " << manifest.vocab_size << " ids, "
            << manifest.max_positions << " positions\n"
            << "device:      " << job->bundle.device.str() << " (memory: " << job->memory->name()
            << ")\n"
            << "dtype:       " << dtype_name(job->bundle.dtype) << " (exported as "
            << manifest.dtype << "; " << job->bundle.precision.reason << ")"
            << (job->bundle.precision.embedding_dtype
                    ? std::string(", embeddings ") +
                          dtype_name(*job->bundle.precision.embedding_dtype)
                    : std::string())
            << (config.model.quantize == "int8" ? ", linear layers int8" : "") << "\n"
            << "threads:     " << job->threads << "\n"
            << "cpu:         " << cpu_isa_name() << " (" << cpu_feature_list() << ")"
            << (cpu_isa_ceiling() ? ", capped by ENGINE_MAX_CPU_ISA" : "") << "\n"
            << "task:        " << task_name(config.task.kind) << ", max_length "
            << config.task.max_length << ", normalize "
            << (config.task.normalize ? "true" : "false") << ", top_k " << config.task.top_k << "\n"
            << "batching:    max_batch_size " << config.batching.max_batch_size << ", max_tokens "
            << config.batching.max_tokens << ", pad_multiple " << config.batching.pad_multiple
            << ", window " << config.batching.window << "\n"
            << "memory:      weights " << format_bytes(weights) << ", activations up to about "
            << format_bytes(activations) << "\n"
            << "input:       " << config.io.input_path << "\n"
            << "output:      " << config.io.output_path << "\n";
  return 0;
}

int serve_command(const std::string& config_file, const std::vector<std::string>& overrides,
                  const std::string& host, int port) {
  return run_server({{config_file, overrides}, host, port});
}

int tokenize_command(const std::string& model_dir, bool pair, int max_length,
                     const std::vector<std::string>& texts) {
  check<ConfigError>(texts.size() == (pair ? 2u : 1u), "tokenize takes {} with{} --pair, got {}",
                     pair ? "two texts" : "one text", pair ? "" : "out", texts.size());
  ModelBundle bundle = load_bundle_without_model(model_dir);
  const Tokenizer& tokenizer = *bundle.tokenizer;
  std::vector<Encoding> sequences;
  if (pair) {
    TaskConfig task;
    task.kind = TaskKind::kScore;
    task.max_length = max_length;
    const auto options = read_family_options(
        bundle.manifest.family, {ConfigNode::empty("model.options"), bundle.manifest, task});
    auto adapter = make_adapter(bundle.manifest.family, {bundle, task, *options});
    TaskRecord record;
    record.query = texts[0];
    record.passages.push_back({texts[1], nullptr});
    for (PlannedSequence& planned : adapter->plan(record)) {
      sequences.push_back(std::move(planned.encoding));
    }
  } else {
    const size_t room = static_cast<size_t>(max_length) - tokenizer.special_token_count(false);
    sequences.push_back(tokenizer.build_single(tokenizer.encode(texts[0], room)));
  }
  nlohmann::ordered_json output = nlohmann::ordered_json::array();
  for (const Encoding& sequence : sequences) {
    nlohmann::ordered_json item;
    item["ids"] = sequence.ids;
    std::vector<std::string> pieces;
    for (int64_t id : sequence.ids) pieces.push_back(tokenizer.id_to_piece(id));
    item["pieces"] = pieces;
    item["type_ids"] = sequence.type_ids;
    output.push_back(std::move(item));
  }
  const auto& shown = output.size() == 1 ? output[0] : output;
  std::cout << shown.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
  return 0;
}

}  // namespace engine
