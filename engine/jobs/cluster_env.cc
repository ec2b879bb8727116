#include "engine/jobs/cluster_env.h"

#include <sched.h>

#include <cstdlib>
#include <optional>
#include <thread>

#include "engine/common/error.h"

namespace engine {
namespace {

std::optional<int> integer_variable(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return std::nullopt;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  check<ConfigError>(*end == '\0' && value >= 0 && value < (1 << 24),
                     "environment variable {}='{}' is not a non-negative integer", name, text);
  return static_cast<int>(value);
}

// The first variable of `names` that is set.
std::optional<int> first_of(std::initializer_list<const char*> names, const char** found) {
  for (const char* name : names) {
    if (auto value = integer_variable(name)) {
      *found = name;
      return value;
    }
  }
  return std::nullopt;
}

ClusterRank checked(ClusterRank rank, const char* rank_name, const char* size_name) {
  check<ConfigError>(rank.world_size >= 1, "{} is {}; it must be at least 1", size_name,
                     rank.world_size);
  check<ConfigError>(rank.rank < rank.world_size, "{} is {} but {} is {}: ranks go from 0 to {}",
                     rank_name, rank.rank, size_name, rank.world_size, rank.world_size - 1);
  rank.local_world_size = std::max(rank.local_world_size, 1);
  rank.local_rank = std::min(rank.local_rank, rank.local_world_size - 1);
  return rank;
}

}  // namespace

ClusterRank detect_cluster_rank() {
  ClusterRank rank;
  const char* found = "";
  if (auto world = integer_variable("WORLD_SIZE"); world && integer_variable("RANK")) {
    rank.source = "torchrun";
    rank.world_size = *world;
    rank.rank = *integer_variable("RANK");
    rank.local_rank = integer_variable("LOCAL_RANK").value_or(0);
    rank.local_world_size = integer_variable("LOCAL_WORLD_SIZE").value_or(1);
    return checked(rank, "RANK", "WORLD_SIZE");
  }
  if (std::getenv("SLURM_STEP_ID") == nullptr && std::getenv("SLURM_STEPID") == nullptr) {
    return rank;
  }
  const auto tasks = first_of({"SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "SLURM_NPROCS"}, &found);
  if (!tasks) return rank;
  const char* size_name = found;
  rank.source = "slurm";
  rank.world_size = *tasks;
  rank.rank = integer_variable("SLURM_PROCID").value_or(0);
  rank.local_rank = integer_variable("SLURM_LOCALID").value_or(0);
  // SLURM_STEP_TASKS_PER_NODE can read "2(x3)"; its leading count is this node's when even.
  if (const char* per_node = std::getenv("SLURM_STEP_TASKS_PER_NODE")) {
    rank.local_world_size = std::atoi(per_node);
  }
  return checked(rank, "SLURM_PROCID", size_name);
}

}  // namespace engine
