// Which ids of a tokenizer.json are pad, unk, bos, eos and mask: the manifest's options first
// (copied by the exporter from tokenizer_config.json / special_tokens_map.json), then what the
// file itself says (padding.pad_id, the model's unknown token, the post-processor's tokens
// around a single sequence), then well-known token names.
#include <fmt/format.h>

#include <array>

#include "engine/common/error.h"
#include "engine/text/hf_model.h"
#include "engine/text/hf_post_processors.h"
#include "engine/text/tokenizer_json.h"

namespace engine {
namespace {

constexpr std::array<const char*, 7> kOptionNames = {
    "pad_token", "unk_token", "bos_token", "eos_token", "mask_token", "cls_token", "sep_token"};

// The token an option names: a string, or an object with a "content" string (AddedToken form).
std::optional<std::string> option_token(const nlohmann::json& options, const char* name,
                                        const std::string& file) {
  const auto found = options.find(name);
  if (found == options.end() || found->is_null()) return std::nullopt;
  if (found->is_string()) return found->get<std::string>();
  if (found->is_object() && found->contains("content") && (*found)["content"].is_string()) {
    return (*found)["content"].get<std::string>();
  }
  throw ConfigError(
      fmt::format("tokenizer option {} for '{}' must be a token string or an object "
                  "with a \"content\" string, found {}",
                  name, file, found->dump()));
}

}  // namespace

void TokenizerJson::resolve_special_tokens(const nlohmann::json& root,
                                           const nlohmann::json& options, const std::string& file) {
  check<ConfigError>(options.is_null() || options.is_object(),
                     "tokenizer options for '{}' must be an object", file);
  const nlohmann::json given = options.is_null() ? nlohmann::json::object() : options;
  for (const auto& [name, value] : given.items()) {
    bool known = false;
    for (const char* option : kOptionNames) known = known || name == option;
    check<ConfigError>(known,
                       "tokenizer option '{}' is not supported for tokenizer_json '{}'; "
                       "supported: {}",
                       name, file, fmt::join(kOptionNames.begin(), kOptionNames.end(), ", "));
  }
  // The id of the first option that is set, else the fallback, else the first known name.
  auto resolve = [&](std::initializer_list<const char*> names, std::optional<int64_t> fallback,
                     std::initializer_list<const char*> well_known) -> int64_t {
    for (const char* name : names) {
      if (auto token = option_token(given, name, file)) {
        const auto id = token_to_id(*token);
        check<ConfigError>(id.has_value(), "tokenizer option {} '{}' is not a token of '{}'", name,
                           *token, file);
        return *id;
      }
    }
    if (fallback) return *fallback;
    for (const char* token : well_known) {
      if (auto id = token_to_id(token)) return *id;
    }
    return -1;
  };
  std::optional<int64_t> pad_id;
  if (root.contains("padding") && root["padding"].is_object() &&
      root["padding"].value("pad_id", nlohmann::json()).is_number_integer()) {
    pad_id = root["padding"]["pad_id"].get<int64_t>();
  }
  const hf::PostProcessor* processor = post_processor_.get();
  special_.pad =
      resolve({"pad_token"}, pad_id, {"[PAD]", "<pad>", "<|padding|>", "<|pad|>", "<|endoftext|>"});
  special_.unk = resolve({"unk_token"}, model_->unk_id(), {"[UNK]", "<unk>", "<|unk|>"});
  special_.bos =
      resolve({"bos_token", "cls_token"}, processor ? processor->leading_special() : std::nullopt,
              {"<s>", "[CLS]", "<|begin_of_text|>", "<bos>", "<|startoftext|>"});
  special_.eos =
      resolve({"eos_token", "sep_token"}, processor ? processor->trailing_special() : std::nullopt,
              {"</s>", "[SEP]", "<|end_of_text|>", "<|endoftext|>", "<eos>"});
  special_.mask = resolve({"mask_token"}, std::nullopt, {"[MASK]", "<mask>", "<|mask|>"});
}

}  // namespace engine
