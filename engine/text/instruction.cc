#include "engine/text/instruction.h"

#include "engine/common/error.h"
#include "engine/config/config_node.h"

namespace engine {

InstructionTemplate::InstructionTemplate(const ConfigNode& options, const std::string& prefix) {
  const std::string instruction_key = prefix + "_instruction";
  const std::string format_key = prefix + "_instruction_format";
  std::string format = options.string(format_key, "{}{}");
  format_ = format;
  if (!options.has(instruction_key)) return;
  instruction_ = options.string(instruction_key, std::nullopt);
  for (size_t at = format.find("\\n"); at != std::string::npos; at = format.find("\\n", at)) {
    format.replace(at, 2, "\n");
  }
  const size_t first = format.find("{}");
  const size_t second = first == std::string::npos ? first : format.find("{}", first + 2);
  check<ConfigError>(
      second != std::string::npos && format.find("{}", second + 2) == std::string::npos,
      "{}: '{}' must hold exactly two {{}}: the instruction, then the text",
      options.where(format_key), format);
  before_instruction_ = format.substr(0, first);
  between_ = format.substr(first + 2, second - first - 2);
  after_text_ = format.substr(second + 2);
}

std::string InstructionTemplate::apply(std::string_view text) const {
  if (!instruction_) return std::string(text);
  std::string result;
  result.reserve(before_instruction_.size() + instruction_->size() + between_.size() + text.size() +
                 after_text_.size());
  result.append(before_instruction_).append(*instruction_).append(between_);
  result.append(text).append(after_text_);
  return result;
}

}  // namespace engine
