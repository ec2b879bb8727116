// Instructions put before a query or passage, as FlagEmbedding's rerankers do it: a format with
// two "{}" slots, the instruction and then the text ("{}{}" by default; a literal "\n" in the
// format is a line break).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace engine {

class ConfigNode;

class InstructionTemplate {
 public:
  InstructionTemplate() = default;
  // Reads `<prefix>_instruction` and `<prefix>_instruction_format` from `options`. Throws
  // ConfigError for a format without exactly two "{}".
  InstructionTemplate(const ConfigNode& options, const std::string& prefix);

  bool empty() const { return !instruction_; }
  const std::optional<std::string>& instruction() const { return instruction_; }
  const std::string& format() const { return format_; }  // as configured
  // The text with its instruction; the text itself when there is none.
  std::string apply(std::string_view text) const;

 private:
  std::optional<std::string> instruction_;
  std::string format_ = "{}{}";
  std::string before_instruction_, between_, after_text_;
};

}  // namespace engine
