#include "engine/cli/prepared_job.h"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include "engine/jobs/cluster_env.h"

namespace engine {

std::unique_ptr<PreparedJob> prepare_job(const std::string& config_file,
                                         const std::vector<std::string>& overrides) {
  auto job = std::make_unique<PreparedJob>();
  job->config = load_config(config_file, overrides);
  spdlog::set_level(spdlog::level::from_str(job->config.logging.level));
  job->threads = job->config.model.threads > 0 ? job->config.model.threads : available_cpus();
  at::set_num_threads(job->threads);
  // The memory backend first, so that the model's own tensors count against memory.limit.
  job->memory =
      make_device_memory(resolve_device(job->config.model.device), job->config.memory.limit);
  job->bundle = load_bundle(job->config.model);
  // Casting at load frees whole tensors; their blocks would only sit in the cache.
  job->memory->empty_cache();
  job->adapter = make_adapter(job->bundle.manifest.family,
                              {job->bundle, job->config.task, *job->config.model.family_options});
  return job;
}

}  // namespace engine
