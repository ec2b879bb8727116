#include "engine/io/records.h"

#include <cmath>

#include <gtest/gtest.h>

#include "engine/common/error.h"

namespace engine {
namespace {

// The RecordError message for `line`, and the id it could recover.
std::pair<std::string, nlohmann::json> error_of(const std::string& line, TaskKind kind) {
  nlohmann::json id;
  try {
    parse_record(line, kind, id);
  } catch (const RecordError& error) {
    return {error.what(), id};
  }
  return {"", id};
}

TEST(RecordsTest, ParsesRerankRecordsWithBareAndNamedPassages) {
  nlohmann::json id;
  TaskRecord record =
      parse_record(R"({"id": "q1", "query": "panda", "passages": ["a", {"id": 7, "text": "b"}]})",
                   TaskKind::kRerank, id);
  EXPECT_EQ(id, "q1");
  EXPECT_EQ(record.query, "panda");
  ASSERT_EQ(record.passages.size(), 2u);
  EXPECT_EQ(record.passages[0].text, "a");
  EXPECT_TRUE(record.passages[0].id.is_null());
  EXPECT_EQ(record.passages[1].text, "b");
  EXPECT_EQ(record.passages[1].id, 7);
}

TEST(RecordsTest, ParsesScoreRecordsInBothSpellings) {
  nlohmann::json id;
  TaskRecord a = parse_record(R"({"id": 3, "text_a": "x", "text_b": "y"})", TaskKind::kScore, id);
  EXPECT_EQ(a.query, "x");
  EXPECT_EQ(a.passages.at(0).text, "y");
  TaskRecord b = parse_record(R"({"query": "q", "passage": "p"})", TaskKind::kScore, id);
  EXPECT_TRUE(id.is_null());
  EXPECT_EQ(b.query, "q");
  EXPECT_EQ(b.passages.at(0).text, "p");
}

TEST(RecordsTest, ARerankOrScoreRecordMayCarryItsInstruction) {
  nlohmann::json id;
  const TaskRecord with = parse_record(
      R"({"query": "q", "passages": ["a"], "instruction": "find it"})", TaskKind::kRerank, id);
  EXPECT_EQ(with.instruction, std::optional<std::string>("find it"));
  const TaskRecord empty =
      parse_record(R"({"query": "q", "passage": "p", "instruction": ""})", TaskKind::kScore, id);
  EXPECT_EQ(empty.instruction, std::optional<std::string>(""));  // no instruction, said so
  const TaskRecord null =
      parse_record(R"({"query": "q", "passage": "p", "instruction": null})", TaskKind::kScore, id);
  EXPECT_FALSE(null.instruction.has_value());
  EXPECT_NE(error_of(R"({"query": "q", "passages": ["a"], "instruction": 3})", TaskKind::kRerank)
                .first.find("\"instruction\" must be a string, found number"),
            std::string::npos);
}

TEST(RecordsTest, EachBadRecordSaysWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"id": 1, "query": "q", "passages": []})", "\"passages\" is empty"},
      {R"({"id": 1, "query": 5, "passages": ["a"]})", "\"query\" must be a string, found number"},
      {R"({"id": 1, "passages": ["a"]})", "missing \"query\""},
      {R"({"id": 1, "query": "q"})", "missing \"passages\""},
      {R"({"id": 1, "query": "q", "passages": "a"})", "\"passages\" must be a list"},
      {R"({"id": 1, "query": "q", "passages": ["a", 3]})", "passages[1] must be a string or an"},
      {R"({"id": 1, "query": "q", "passages": [{"id": 2}]})", "passages[0] has no \"text\""},
      {R"({"id": 1, "query": "q", "passages": [{"text": null}]})",
       "passages[0].text must be a string, found null"},
      {R"({"id": [1], "query": "q", "passages": ["a"]})", "'id' must be a string or an integer"},
      {R"(["not", "an", "object"])", "must be a JSON object, found array"},
      {R"({"id": 1, "query": "q", "passages": ["a"])", "malformed JSON at byte"},
      {"", "empty line"},
      {"   ", "empty line"},
      {"{\"query\": \"caf\xC3\", \"passages\": [\"a\"]}", "invalid UTF-8 at byte 14"},
  };
  for (const auto& [line, expected] : cases) {
    EXPECT_NE(error_of(line, TaskKind::kRerank).first.find(expected), std::string::npos)
        << line << " -> " << error_of(line, TaskKind::kRerank).first;
  }
  EXPECT_NE(error_of(R"({"text_a": "x"})", TaskKind::kScore).first.find("needs \"text_a\""),
            std::string::npos);
}

TEST(RecordsTest, ErrorRecordsKeepTheIdWhenKnown) {
  auto [message, id] =
      error_of(R"({"id": "q9", "query": 1, "passages": ["a"]})", TaskKind::kRerank);
  EXPECT_EQ(id, "q9");
  EXPECT_EQ(error_record(4, id, message).dump(),
            R"({"line":4,"id":"q9","error":"\"query\" must be a string, found number"})");
  EXPECT_EQ(error_record(5, nullptr, "bad").dump(), R"({"line":5,"error":"bad"})");
}

TEST(RecordsTest, RerankOutputIsSortedBestFirstAndCutToTopK) {
  nlohmann::json id;
  TaskRecord record = parse_record(
      R"({"id": "q", "query": "x", "passages": ["a", {"id": "B", "text": "b"}, "c", "d"]})",
      TaskKind::kRerank, id);
  const std::vector<float> scores = {0.25f, 2.5f, -1.0f, 0.25f};
  EXPECT_EQ(rerank_output(record, scores, 0).dump(),
            R"({"id":"q","results":[{"index":1,"id":"B","score":2.5},{"index":0,"score":0.25},)"
            R"({"index":3,"score":0.25},{"index":2,"score":-1.0}]})");
  EXPECT_EQ(rerank_output(record, scores, 2).dump(),
            R"({"id":"q","results":[{"index":1,"id":"B","score":2.5},{"index":0,"score":0.25}]})");
}

TEST(RecordsTest, NanScoresSortLast) {
  nlohmann::json id;
  TaskRecord record =
      parse_record(R"({"query": "x", "passages": ["a", "b", "c"]})", TaskKind::kRerank, id);
  const auto output = rerank_output(record, {NAN, 1.0f, 2.0f}, 0);
  EXPECT_EQ(output["results"][0]["index"], 2);
  EXPECT_EQ(output["results"][1]["index"], 1);
  EXPECT_EQ(output["results"][2]["index"], 0);
}

TEST(RecordsTest, AnEmbeddingIsWrittenWithWhatItHoldsSparseByIdOrByToken) {
  nlohmann::json id;
  const TaskRecord record = parse_record(R"({"id": "e1", "text": "x"})", TaskKind::kEmbed, id);
  Embedding embedding;
  embedding.dense = std::vector<float>{0.5f, -1.0f};
  embedding.sparse = SparseVector{{830, 4}, {0.25f, 0.5f}, {}};
  embedding.multi_vector = std::vector<std::vector<float>>{{1.0f, 2.0f}, {3.0f, 4.0f}};
  EXPECT_EQ(embedding_output(record, embedding).dump(),
            R"({"id":"e1","dense":[0.5,-1.0],"sparse":{"830":0.25,"4":0.5},)"
            R"("colbert":[[1.0,2.0],[3.0,4.0]]})");
  embedding.dense.reset();
  embedding.multi_vector.reset();
  embedding.sparse->tokens = {"▁river", "s"};
  EXPECT_EQ(embedding_output(record, embedding).dump(),
            R"({"id":"e1","sparse":{"▁river":0.25,"s":0.5}})");
}

TEST(RecordsTest, TheOutputLineFollowsTheTaskAndRefusesAResultOfAnotherShape) {
  nlohmann::json id;
  const TaskRecord rerank =
      parse_record(R"({"id": 3, "query": "x", "passages": ["a", "b"]})", TaskKind::kRerank, id);
  TaskConfig task;
  task.kind = TaskKind::kRerank;
  task.top_k = 1;
  RecordResult result;
  result.scores = {0.5f, 1.5f};
  EXPECT_EQ(output_line(rerank, result, task).dump(),
            R"({"id":3,"results":[{"index":1,"score":1.5}]})");
  result.scores = {0.5f};
  EXPECT_THROW(output_line(rerank, result, task), std::logic_error);
  task.kind = TaskKind::kEmbed;
  EXPECT_THROW(output_line(rerank, result, task), std::logic_error);
  EXPECT_EQ(best_first({0.25f, NAN, 2.0f, 0.25f}), (std::vector<size_t>{2, 0, 3, 1}));
}

TEST(RecordsTest, ScoresAreWrittenAsTheShortestExactFloat) {
  EXPECT_EQ(score_value(0.1f).dump(), "0.1");
  EXPECT_EQ(score_value(-0.010565657f).dump(), "-0.010565657");
  EXPECT_EQ(static_cast<float>(score_value(0.1f).get<double>()), 0.1f);
  for (float score : {-3.4028235e38f, 1e-30f, 0.123456789f, -7.0f}) {
    EXPECT_EQ(static_cast<float>(score_value(score).get<double>()), score) << score;
  }
  nlohmann::json id;
  TaskRecord record =
      parse_record(R"({"id": 12, "text_a": "x", "text_b": "y"})", TaskKind::kScore, id);
  EXPECT_EQ(score_output(record, 0.5f).dump(), R"({"id":12,"score":0.5})");
}

}  // namespace
}  // namespace engine
