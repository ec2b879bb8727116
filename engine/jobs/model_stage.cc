#include "engine/jobs/model_stage.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <string>

#include <spdlog/spdlog.h>

#include "engine/runtime/devices.h"

namespace engine {

ModelStage::ModelStage(const Config& config, FamilyAdapter& adapter, DeviceMemory& memory)
    : config_(config),
      adapter_(adapter),
      memory_(memory),
      limits_(batch_limits(config)),
      controller_(memory_budget(config.memory, memory)),
      cache_(config.memory, memory),
      runner_(adapter, memory, controller_, cache_, limits_) {
  if (const auto estimate = adapter.memory_estimate()) {
    controller_.set_prior(estimate->per_token, estimate->per_token_squared);
  }
}

BatchOutcome ModelStage::run(const std::vector<const Encoding*>& sequences,
                             const std::function<void(const BatchReport&)>& on_batch) {
  std::vector<size_t> lengths;
  lengths.reserve(sequences.size());
  for (const Encoding* sequence : sequences) lengths.push_back(sequence->size());
  BatchOutcome all;
  all.results.resize(sequences.size());
  all.errors.resize(sequences.size());
  for (const BatchPlan& plan : plan_batches(sequences, lengths)) {
    std::vector<const Encoding*> batch;
    batch.reserve(plan.indices.size());
    for (size_t index : plan.indices) batch.push_back(sequences[index]);
    const auto start = std::chrono::steady_clock::now();
    BatchOutcome outcome = runner_.run(batch);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (size_t i = 0; i < batch.size(); ++i) {
      all.results[plan.indices[i]] = std::move(outcome.results[i]);
      all.errors[plan.indices[i]] = std::move(outcome.errors[i]);
    }
    if (on_batch) on_batch({batch.size(), plan.real_tokens, plan.padded_tokens(), seconds});
  }
  adapter_.forget_between_batches();
  return all;
}

std::vector<BatchPlan> ModelStage::plan_batches(const std::vector<const Encoding*>& sequences,
                                                const std::vector<size_t>& lengths) const {
  if (!adapter_.runs_shared_prefixes_once()) return cut_batches(lengths, limits_);
  // One group per distinct shared prefix: a record's passages, or records of the same query.
  std::map<std::vector<int64_t>, size_t> group_of;
  std::vector<size_t> groups;
  groups.reserve(sequences.size());
  for (const Encoding* sequence : sequences) {
    const size_t shared = sequence->shared_prefix;
    if (shared == 0 || shared >= sequence->size()) {
      groups.push_back(kNoGroup);
      continue;
    }
    std::vector<int64_t> prefix(sequence->ids.begin(),
                                sequence->ids.begin() + static_cast<std::ptrdiff_t>(shared));
    groups.push_back(group_of.emplace(std::move(prefix), group_of.size()).first->second);
  }
  return cut_grouped_batches(lengths, groups, limits_);
}

BatchLimits batch_limits(const Config& config) {
  BatchLimits limits;
  limits.max_batch_size = static_cast<size_t>(config.batching.max_batch_size);
  limits.max_tokens = config.batching.max_tokens;
  limits.pad_multiple = static_cast<size_t>(config.batching.pad_multiple);
  limits.max_padded_length = static_cast<size_t>(config.task.max_length);
  limits.batch_cost_tokens = config.batching.batch_cost_tokens;
  if (limits.batch_cost_tokens < 0) {
    // On a CPU a pass adds a few milliseconds, a few tens of tokens' work (docs/speed.md); on a
    // GPU a pass is worth a full budget of tokens.
    limits.batch_cost_tokens =
        resolve_device(config.model.device).is_cuda() ? config.batching.max_tokens : 64;
  }
  return limits;
}

int64_t memory_budget(const MemoryConfig& config, const DeviceMemory& memory) {
  if (config.budget_fraction > 0) {
    return static_cast<int64_t>(config.budget_fraction * static_cast<double>(memory.stats().free));
  }
  return config.budget;
}

void ModelStage::warm_up() {
  const TaskConfig& task = config_.task;
  std::string filler;
  for (int i = 0; i < task.max_length * 2; ++i) filler += "warm ";
  TaskRecord record;
  record.query = filler;
  if (task.kind != TaskKind::kEmbed) record.passages.push_back({filler, nullptr});
  const std::vector<PlannedSequence> plan = adapter_.plan(record);
  if (plan.empty()) return;
  const auto longest = std::max_element(plan.begin(), plan.end(), [](const auto& a, const auto& b) {
    return a.encoding.size() < b.encoding.size();
  });
  const size_t length = padded_length(longest->encoding.size(), limits_);
  const size_t count =
      std::clamp<size_t>(static_cast<size_t>(limits_.max_tokens) / std::max<size_t>(length, 1), 1,
                         limits_.max_batch_size);
  const BatchOutcome outcome = runner_.run(std::vector<const Encoding*>(count, &longest->encoding));
  const bool fits = std::all_of(outcome.errors.begin(), outcome.errors.end(),
                                [](const std::string& error) { return error.empty(); });
  spdlog::info("warm-up: {} sequences of {} tokens {}; peak {} allocated, {} reserved", count,
               length, fits ? "ran" : "did not fit even one at a time",
               format_bytes(runner_.stats().peak_allocated),
               format_bytes(memory_.stats().reserved));
}

}  // namespace engine
