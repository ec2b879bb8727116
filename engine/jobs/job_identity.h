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
//
// The numerics of a run are recorded beside the identity, not in it: the device, and on a CPU the
// instruction set of LibTorch's kernels and the thread count, since oneDNN, MKL and ATen's
// attention cut some products differently by thread count and instruction set, which moves a
// float32 in its last digits. The same job run with the same numerics writes the same bytes.
#pragma once

#include <string>

#include <c10/core/Device.h>
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

// The numerics of a run on `device` with `threads` intra-op threads: {"device": "cpu",
// "cpu_isa": "avx2", "threads": 2, "torch": "2.11.0"}; on a GPU the device type and LibTorch.
nlohmann::json run_numerics(const c10::Device& device, int threads);
// What differs, as "threads (was 1, now 2)"; empty when they agree or nothing was recorded (a
// checkpoint from an engine that did not record them).
std::string numerics_difference(const nlohmann::json& recorded, const nlohmann::json& current);

}  // namespace engine
