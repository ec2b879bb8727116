// The folder "<output>.parts" where a job run in pieces (ranks of a cluster job, workers of
// `engine launch`) keeps its work: job.json, the job's identity, and one part per block of the
// input: block-000007.jsonl once complete, block-000007.jsonl.partial and
// block-000007.checkpoint while under way. A part is a block's output exactly as a single process
// writes it, so the merged output is byte for byte a single run's.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/io/input_scan.h"
#include "engine/jobs/batch_job.h"

namespace engine {

class JobParts {
 public:
  explicit JobParts(const std::string& output_path);

  const std::string& folder() const { return folder_; }

  // Creates the folder and records `identity`, or checks the one recorded there. Throws
  // ConfigError saying what changed when the folder holds another job's parts.
  void claim(const nlohmann::json& identity) const;
  // The identity recorded by claim(); throws ConfigError when there is none.
  nlohmann::json recorded_identity() const;

  std::string output_of(int64_t block) const;
  std::string checkpoint_of(int64_t block) const;
  bool complete(const InputBlock& block) const;
  // The part for `block`, checkpointed, under `identity`.
  JobPart part(const InputBlock& block, const nlohmann::json& identity) const;

  // The blocks of `scan` whose part is not complete.
  std::vector<InputBlock> pending(const InputScan& scan) const;

  // Writes every block's part into `output_path` in input order (as <output_path>.partial, then
  // renamed), after checking that the parts are of the job `identity` names and that each is
  // complete and holds its block's lines, then removes the folder. Throws ConfigError saying what
  // is missing or changed.
  void merge(const InputScan& scan, const nlohmann::json& identity,
             const std::string& output_path) const;

 private:
  // Throws ConfigError when the recorded identity is missing or not `identity`.
  void check_identity(const nlohmann::json& identity) const;

  std::string folder_;
};

}  // namespace engine
