// The engine's subcommands. Each returns the process exit status.
#pragma once

#include <string>
#include <vector>

namespace engine {

// engine --config FILE [--set key=value]... [--summary FILE]
// `summary_file`, when not empty, receives the job's summary as JSON (summary_json). Started as a
// task of a Slurm step or by torchrun, it runs that rank's share of the input's blocks.
int run_job_command(const std::string& config_file, const std::vector<std::string>& overrides,
                    const std::string& summary_file = "");
// engine merge --config FILE: the parts of a cluster job, checked and joined in input order.
int merge_command(const std::string& config_file, const std::vector<std::string>& overrides);
// engine launch --config FILE [--devices LIST]: one worker process per device.
int launch_command(const std::string& config_file, const std::vector<std::string>& overrides,
                   const std::string& devices, const std::string& summary_file);
// engine worker --config FILE: a launch's worker, driven over stdin and stdout (launcher.h).
int worker_command(const std::string& config_file, const std::vector<std::string>& overrides);
// engine serve --config FILE [--host H] [--port P]: the HTTP server (serve/server.h).
int serve_command(const std::string& config_file, const std::vector<std::string>& overrides,
                  const std::string& host, int port);
// engine check --config FILE: validates config and bundle, prints the plan, runs nothing.
int check_command(const std::string& config_file, const std::vector<std::string>& overrides);
// engine tokenize --model DIR [--pair] [--max-length N] TEXT [TEXT_B]
int tokenize_command(const std::string& model_dir, bool pair, int max_length,
                     const std::vector<std::string>& texts);

}  // namespace engine
