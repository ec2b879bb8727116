// engine: rerank and score JSONL corpora with exported models. Exit status: 0 when every record
// got an output line, 2 for a usage, configuration or bundle error, 1 for a fatal runtime error.
#include <cstdlib>
#include <iostream>

#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "engine/cli/commands.h"
#include "engine/common/error.h"
#include "models/registry.h"

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;

void set_up_logging() {
  auto logger = spdlog::stderr_color_mt("engine");
  logger->set_pattern("[%H:%M:%S] [%^%l%$] %v");
  spdlog::set_default_logger(logger);
}

int dispatch(int argc, char** argv) {
  CLI::App app{"Rerank and score corpora with exported cross-encoder models"};
  app.require_subcommand(0, 1);
  std::string config_file;
  std::vector<std::string> overrides;
  app.add_option("--config", config_file, "job config (YAML)")->check(CLI::ExistingFile);
  app.add_option("--set", overrides, "override a config key: key.path=value (repeatable)");

  CLI::App* check = app.add_subcommand("check", "validate config and bundle, print the plan");
  std::string check_config;
  std::vector<std::string> check_overrides;
  check->add_option("--config", check_config, "job config (YAML)")
      ->required()
      ->check(CLI::ExistingFile);
  check->add_option("--set", check_overrides, "override a config key: key.path=value");

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
  if (*tokenize) return engine::tokenize_command(model_dir, pair, max_length, texts);
  if (config_file.empty()) {
    std::cerr << app.help() << "\nerror: --config is required\n";
    return kExitUsage;
  }
  return engine::run_job_command(config_file, overrides);
}

}  // namespace

int main(int argc, char** argv) {
  set_up_logging();
  models::register_model_families();
  try {
    return dispatch(argc, argv);
  } catch (const engine::ConfigError& error) {
    spdlog::error("{}", error.what());
    return kExitUsage;
  } catch (const std::exception& error) {
    spdlog::error("fatal: {}", error.what());
    return kExitRuntime;
  }
}
