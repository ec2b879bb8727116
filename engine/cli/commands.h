// The engine's subcommands. Each returns the process exit status.
#pragma once

#include <string>
#include <vector>

namespace engine {

// engine --config FILE [--set key=value]...
int run_job_command(const std::string& config_file, const std::vector<std::string>& overrides);
// engine check --config FILE: validates config and bundle, prints the plan, runs nothing.
int check_command(const std::string& config_file, const std::vector<std::string>& overrides);
// engine tokenize --model DIR [--pair] [--max-length N] TEXT [TEXT_B]
int tokenize_command(const std::string& model_dir, bool pair, int max_length,
                     const std::vector<std::string>& texts);

}  // namespace engine
