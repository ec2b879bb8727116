#include "engine/io/jsonl_reader.h"
#include "engine/text/utf8.h"

#include <gtest/gtest.h>

#include "tests/support/test_support.h"

namespace engine {
namespace {

std::vector<InputLine> read_all(const std::string& path, int64_t limit) {
  JsonlReader reader(path, limit);
  std::vector<InputLine> lines;
  InputLine line;
  while (reader.next(line)) lines.push_back(line);
  return lines;
}

TEST(JsonlReaderTest, NumbersLinesAndStripsLineBreaks) {
  testing::TempDir dir;
  testing::write_file(dir.path("a.jsonl"), "one\r\ntwo\n\nlast-without-newline");
  const auto lines = read_all(dir.path("a.jsonl"), 1024);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0].text, "one");
  EXPECT_EQ(lines[1].text, "two");
  EXPECT_EQ(lines[2].text, "");
  EXPECT_EQ(lines[3].text, "last-without-newline");
  EXPECT_EQ(lines[3].number, 4);
  EXPECT_EQ(count_lines(dir.path("a.jsonl")), 4);
}

TEST(JsonlReaderTest, TooLongLineIsFlaggedAndTheNextLineIsIntact) {
  testing::TempDir dir;
  testing::write_file(dir.path("a.jsonl"), std::string(5000, 'x') + "\nshort\n");
  const auto lines = read_all(dir.path("a.jsonl"), 1024);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(lines[0].too_long);
  EXPECT_TRUE(lines[0].text.empty());
  EXPECT_EQ(lines[0].bytes, 5000);
  EXPECT_FALSE(lines[1].too_long);
  EXPECT_EQ(lines[1].text, "short");
  EXPECT_EQ(lines[1].number, 2);
}

TEST(JsonlReaderTest, EmptyFileHasNoLines) {
  testing::TempDir dir;
  testing::write_file(dir.path("a.jsonl"), "");
  EXPECT_TRUE(read_all(dir.path("a.jsonl"), 1024).empty());
  EXPECT_EQ(count_lines(dir.path("a.jsonl")), 0);
}

TEST(Utf8Test, FindsTheFirstInvalidByte) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), std::string::npos);
  EXPECT_EQ(find_invalid_utf8("caf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\x98\x80"), std::string::npos);
  EXPECT_EQ(find_invalid_utf8("ab\xC3"), 2u);               // truncated
  EXPECT_EQ(find_invalid_utf8("a\xC0\xAF"), 1u);            // overlong '/'
  EXPECT_EQ(find_invalid_utf8("a\xE0\x80\xAF"), 1u);        // overlong
  EXPECT_EQ(find_invalid_utf8("xy\xED\xA0\x80"), 2u);       // surrogate U+D800
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);     // past U+10FFFF
  EXPECT_EQ(find_invalid_utf8("ok\x80"), 2u);               // stray continuation
  EXPECT_EQ(find_invalid_utf8("\xFF"), 0u);
  EXPECT_EQ(find_invalid_utf8("\xF4\x8F\xBF\xBF"), std::string::npos);  // U+10FFFF itself
}

TEST(Utf8Test, PrefixCountsCharactersNotBytes) {
  EXPECT_EQ(utf8_prefix("abc", 2), "ab");
  EXPECT_EQ(utf8_prefix("abc", 5), "abc");
  EXPECT_EQ(utf8_prefix("abc", 0), "");
  EXPECT_EQ(utf8_prefix("\xE5\xA4\xA7\xE7\x86\x8A\xE7\x8C\xAB", 2), "\xE5\xA4\xA7\xE7\x86\x8A");
  EXPECT_EQ(utf8_prefix("a\xF0\x9F\x90\xBC" "b", 2), "a\xF0\x9F\x90\xBC");
}

}  // namespace
}  // namespace engine
