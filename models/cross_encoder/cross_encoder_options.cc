#include "models/cross_encoder/cross_encoder_options.h"

#include "engine/config/config_node.h"

namespace models::cross_encoder {
namespace {

nlohmann::json instruction_settings(const engine::InstructionTemplate& instruction) {
  return {{"instruction", instruction.instruction() ? nlohmann::json(*instruction.instruction())
                                                    : nlohmann::json(nullptr)},
          {"format", instruction.format()}};
}

}  // namespace

nlohmann::json CrossEncoderOptions::settings() const {
  return {{"label", label},
          {"activation", activation},
          {"query_instruction", instruction_settings(query_instruction)},
          {"passage_instruction", instruction_settings(passage_instruction)},
          {"long_passages", long_passages == LongPassages::kChunkMax ? "chunk_max" : "truncate"},
          {"chunk_overlap", chunk_overlap},
          {"max_passage_chars", max_passage_chars}};
}

std::shared_ptr<const engine::FamilyOptions> read_options(const engine::OptionsContext& context) {
  const engine::ConfigNode& node = context.options;
  auto options = std::make_shared<CrossEncoderOptions>();
  const int64_t labels = context.manifest.architecture.value("num_labels", 1);
  options->label = static_cast<int>(node.integer("label", 0, labels - 1, 0));
  options->activation = node.choice("activation", {"auto", "none", "sigmoid", "softmax"}, "auto");
  options->query_instruction = engine::InstructionTemplate(node, "query");
  options->passage_instruction = engine::InstructionTemplate(node, "passage");
  options->long_passages =
      node.choice("long_passages", {"truncate", "chunk_max"}, "truncate") == "chunk_max"
          ? LongPassages::kChunkMax
          : LongPassages::kTruncate;
  options->chunk_overlap = static_cast<int>(node.integer("chunk_overlap", 0, 1 << 16, 80));
  options->max_passage_chars = node.integer("max_passage_chars", 1, 1LL << 40, 128000);
  node.reject_unknown_keys();
  return options;
}

}  // namespace models::cross_encoder
