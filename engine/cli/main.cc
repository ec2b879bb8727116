// engine: rerank and score JSONL corpora with exported models. Exit status: 0 when every record
// got an output line, 2 for a usage, configuration or bundle error, 1 for a fatal runtime error.
#include <cstdlib>
#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "engine/cli/commands.h"
#include "engine/common/cpu_features.h"
#include "engine/common/error.h"
#include "engine/runtime/graph_rewrites.h"
#include "models/registry.h"

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

void set_up_logging() {
  auto logger = spdlog::stderr_color_mt("engine");
  logger->set_pattern("[%H:%M:%S] [%^%l%$] %v");
  spdlog::set_default_logger(logger);
}

// A launch's workers say which one they are on every line.
void tag_logging(const std::string& tag) {
  if (!tag.empty()) spdlog::default_logger()->set_pattern("[%H:%M:%S] [" + tag + "] [%^%l%$] %v");
}

// --config and --set, on the main command or a subcommand.
void add_config_options(CLI::App& app, std::string& config_file,
                        std::vector<std::string>& overrides, bool required) {
  auto* option =
      app.add_option("--config", config_file, "job config (YAML)")->check(CLI::ExistingFile);
  if (required) option->required();
  app.add_option("--set", overrides, "override a config key: key.path=value (repeatable)");
}

int dispatch(int argc, char** argv) {
  CLI::App app{
      "Rerank, score and embed corpora with exported models (cross-encoders, StructBERT, BGE-M3, "
      "LLM rerankers)"};
  app.require_subcommand(0, 1);
  std::string config_file;
  std::vector<std::string> overrides;
  add_config_options(app, config_file, overrides, false);
  std::string summary_file;
  app.add_option("--summary", summary_file, "also write the job's summary to FILE as JSON");

  CLI::App* check = app.add_subcommand("check", "validate config and bundle, print the plan");
  std::string check_config;
  std::vector<std::string> check_overrides;
  add_config_options(*check, check_config, check_overrides, true);

  CLI::App* launch = app.add_subcommand("launch", "run the job on one worker process per device");
  std::string launch_config, devices = "auto", launch_summary;
  std::vector<std::string> launch_overrides;
  add_config_options(*launch, launch_config, launch_overrides, true);
  launch->add_option("--devices", devices,
                     "auto, cpu, cpu:N, or GPU indices such as 0,1,2,3 (default auto)");
  launch->add_option("--summary", launch_summary, "also write the summary to FILE as JSON");

  CLI::App* merge = app.add_subcommand("merge", "join a cluster job's parts in input order");
  std::string merge_config;
  std::vector<std::string> merge_overrides;
  add_config_options(*merge, merge_config, merge_overrides, true);

  CLI::App* worker = app.add_subcommand("worker", "a worker of engine launch (internal)");
  worker->group("");  // not listed in --help: the launcher starts it
  std::string worker_config, log_tag;
  std::vector<std::string> worker_overrides;
  add_config_options(*worker, worker_config, worker_overrides, true);
  worker->add_option("--log-tag", log_tag, "name on every log line");

  CLI::App* serve = app.add_subcommand(
      "serve", "serve the model over HTTP: TEI, Cohere/Jina and OpenAI routes (docs/serving.md)");
  std::string serve_config, serve_host;
  std::vector<std::string> serve_overrides;
  int serve_port = -1;
  add_config_options(*serve, serve_config, serve_overrides, true);
  serve->add_option("--host", serve_host, "address to listen on (default serve.host, 127.0.0.1)");
  serve->add_option("--port", serve_port, "port (default serve.port, 8080; 0: any free port)")
      ->check(CLI::Range(0, 65535));

  CLI::App* tokenize = app.add_subcommand("tokenize", "print a text's ids and pieces as JSON");
  std::string model_dir;
  bool pair = false;
  int max_length = 512;
  std::vector<std::string> texts;
  tokenize->add_option("--model", model_dir, "model bundle directory")->required();
  tokenize->add_flag("--pair", pair, "encode TEXT and TEXT_B as a (query, passage) pair");
  tokenize->add_option("--max-length", max_length, "maximum tokens, specials included")
      ->check(CLI::Range(16, 1 << 20));
  tokenize->add_option("texts", texts, "TEXT [TEXT_B]")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int status = app.exit(error);
    return status == 0 ? 0 : kExitUsage;
  }
  if (*check) return engine::check_command(check_config, check_overrides);
  if (*launch)
    return engine::launch_command(launch_config, launch_overrides, devices, launch_summary);
  if (*merge) return engine::merge_command(merge_config, merge_overrides);
  if (*worker) {
    tag_logging(log_tag);
    return engine::worker_command(worker_config, worker_overrides);
  }
  if (*serve) return engine::serve_command(serve_config, serve_overrides, serve_host, serve_port);
  if (*tokenize) return engine::tokenize_command(model_dir, pair, max_length, texts);
  if (config_file.empty()) {
    std::cerr << app.help() << "\nerror: --config is required\n";
    return kExitUsage;
  }
  return engine::run_job_command(config_file, overrides, summary_file);
}

}  // namespace

int main(int argc, char** argv) {
  engine::bound_onednn_caches();  // before LibTorch makes its first primitive
  set_up_logging();
  models::register_model_families();
  try {
    engine::apply_cpu_isa_ceiling();  // before LibTorch picks its kernels
    return dispatch(argc, argv);
  } catch (const engine::ConfigError& error) {
    spdlog::error("{}", error.what());
    return kExitUsage;
  } catch (const std::exception& error) {
    spdlog::error("fatal: {}", error.what());
    return kExitRuntime;
  }
}
