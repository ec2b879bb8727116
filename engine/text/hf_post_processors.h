// tokenizer.json post-processors: the special tokens around one sequence or a pair, and the
// token type ids (TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "engine/text/hf_json.h"
#include "engine/text/tokenizer.h"

namespace engine::hf {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // `parts` holds the first sequence (type ids 0) and, for a pair, the second (type ids 1);
  // afterwards it holds the pieces of the result in order, special tokens included.
  virtual void process(std::vector<Encoding>& parts) const = 0;
  // The ids of the special tokens in front of and after a single sequence, where there are.
  virtual std::optional<int64_t> leading_special() const { return std::nullopt; }
  virtual std::optional<int64_t> trailing_special() const { return std::nullopt; }
};

// The post-processor that `site` describes; nullptr for null.
std::unique_ptr<PostProcessor> make_post_processor(const JsonSite& site);

// The single sequence or pair with the special tokens of `processor` (nullptr: none, the
// second sequence of type 1).
Encoding post_process(const PostProcessor* processor, const std::vector<int64_t>& first,
                      const std::vector<int64_t>* second);

}  // namespace engine::hf
