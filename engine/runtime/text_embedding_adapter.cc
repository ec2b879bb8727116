#include "engine/runtime/text_embedding_adapter.h"

#include "engine/common/error.h"

namespace engine {

TextEmbeddingAdapter::TextEmbeddingAdapter(const ModelBundle& bundle, const TaskConfig& task)
    : bundle_(bundle), task_(task) {
  check<ConfigError>(task_.max_length <= bundle_.manifest.max_positions,
                     "task.max_length is {} but the model has {} positions; set task.max_length "
                     "to at most {}",
                     task_.max_length, bundle_.manifest.max_positions,
                     bundle_.manifest.max_positions);
}

std::vector<PlannedSequence> TextEmbeddingAdapter::plan(const TaskRecord& record) const {
  const Tokenizer& tokenizer = *bundle_.tokenizer;
  const size_t room = static_cast<size_t>(task_.max_length) - tokenizer.special_token_count(false);
  const auto encode = [&](const std::string& prompt, const std::string& text) {
    return tokenizer.build_single(tokenizer.encode(prompt.empty() ? text : prompt + text, room));
  };
  std::vector<PlannedSequence> sequences;
  const std::string query_prompt =
      record.prompt_name.empty() ? query_prompt_ : prompt_named(record.prompt_name);
  sequences.push_back({encode(query_prompt, record.query), kQuerySlot});
  for (size_t i = 0; i < record.passages.size(); ++i) {
    sequences.push_back({encode(passage_prompt_, record.passages[i].text), static_cast<int>(i)});
  }
  return sequences;
}

std::string TextEmbeddingAdapter::prompt_named(const std::string& name) const {
  check<RecordError>(name == "none", "\"prompt_name\" is '{}', but this model has no prompts",
                     name);
  return "";
}

RecordResult TextEmbeddingAdapter::finish(const TaskRecord& record,
                                          const std::vector<PlannedSequence>& plan,
                                          const std::vector<SequenceResult>& results) const {
  RecordResult result;
  // plan() puts the query (an embed record's text) first.
  if (task_.kind == TaskKind::kEmbed) {
    result.embedding = embedding(plan[0], results[0]);
    return result;
  }
  result.scores.resize(record.passages.size());
  for (size_t i = 1; i < plan.size(); ++i) {
    result.scores[static_cast<size_t>(plan[i].slot)] =
        pair_score(plan[0], results[0], plan[i], results[i]);
  }
  return result;
}

}  // namespace engine
