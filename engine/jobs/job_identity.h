// What makes two runs the same job: the model (the checksums of its files), the settings that
// decide what the output says, and the input (its size, line count and SHA-256). A checkpoint or a
// folder of parts is only ever continued by the same job: anything else is refused with what
// changed, rather than mixed into the old output.
//
// Settings in: what is computed and how it is batched (model.dtype, model.embedding_dtype,
// model.graph, model.quantize, model.options, task.*, batching.*, input.max_line_bytes,
// job.block_lines).
// Left out on purpose: where the model runs and how fast (model.device, model.threads), memory
// controls (memory.*), logging, and the paths themselves. These may change between a run and its
// resumption, and between a single process and the workers of a launch. Batches split for memory
// can move scores in their last digits (docs/jobs.md).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "engine/config/config.h"
#include "engine/io/input_scan.h"
#include "engine/runtime/family_adapter.h"
#include "engine/runtime/manifest.h"

namespace engine {

// `options`: the family's options as its reader made them (recorded as model.options.KEY).
nlohmann::json job_identity(const Config& config, const Manifest& manifest,
                            const FamilyOptions& options, const InputScan& input);

// Empty when the two are the same job; otherwise what differs, one entry per changed key, as
// "input.sha256 (was 3f2a81c09d1e…, now 9c1b04e7aa20…)".
std::string identity_difference(const nlohmann::json& recorded, const nlohmann::json& current);

}  // namespace engine
