// Where this process stands in a job that a scheduler started several times: Slurm (srun sets
// SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID for each task of a step) or torchrun-style launchers
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE). The engine does not schedule anything itself:
// each such process takes its share of the input's blocks and writes its part, and
// `engine merge` assembles them (docs/jobs.md).
#pragma once

#include <string>
#include <vector>

namespace engine {

struct ClusterRank {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string source;  // "torchrun", "slurm", or empty for a process on its own

  bool distributed() const { return world_size > 1; }
};

// From the environment: torchrun's variables when RANK and WORLD_SIZE are set, else a Slurm step's
// (SLURM_STEP_ID set by srun, so that a batch script's own shell is not taken for task 0). Throws
// ConfigError naming the variable when one is malformed or out of range.
ClusterRank detect_cluster_rank();

// The CPUs and GPUs a rank may use: runtime/devices.h.

}  // namespace engine
