#include "engine/batching/length_bucketer.h"

#include <algorithm>
#include <numeric>
#include <iostream>
#include <random>

#include <gtest/gtest.h>

namespace engine {
namespace {

std::vector<std::vector<size_t>> indices_of(const std::vector<BatchPlan>& plans) {
  std::vector<std::vector<size_t>> result;
  for (const auto& plan : plans) result.push_back(plan.indices);
  return result;
}

TEST(LengthBucketerTest, SortsLongestFirstAndCutsAtTheBatchSize) {
  const std::vector<size_t> lengths = {3, 9, 5, 7, 1};
  BatchLimits limits{2, 1000, 1, 0};
  const auto plans = cut_batches(lengths, limits);
  EXPECT_EQ(indices_of(plans), (std::vector<std::vector<size_t>>{{1, 3}, {2, 0}, {4}}));
  EXPECT_EQ(plans[0].padded_length, 9u);
  EXPECT_EQ(plans[1].padded_length, 5u);
  EXPECT_EQ(plans[2].padded_length, 1u);
  EXPECT_EQ(plans[0].real_tokens, 16u);
  EXPECT_EQ(plans[0].padded_tokens(), 18u);
}

TEST(LengthBucketerTest, TokenBudgetCountsPaddingExactlyAtTheBoundary) {
  // Four sequences of 10: a budget of 40 holds all four, 39 only three.
  const std::vector<size_t> lengths = {10, 10, 10, 10};
  EXPECT_EQ(cut_batches(lengths, {32, 40, 1, 0}).size(), 1u);
  const auto plans = cut_batches(lengths, {32, 39, 1, 0});
  EXPECT_EQ(indices_of(plans), (std::vector<std::vector<size_t>>{{0, 1, 2}, {3}}));
}

TEST(LengthBucketerTest, PaddedLengthIsRoundedUpToTheMultiple) {
  const std::vector<size_t> lengths = {9, 3, 17};
  const auto plans = cut_batches(lengths, {2, 1000, 8, 0});
  ASSERT_EQ(plans.size(), 2u);
  EXPECT_EQ(plans[0].padded_length, 24u);  // 17 -> 24
  EXPECT_EQ(plans[1].padded_length, 8u);   // 3 -> 8
  // The budget sees the rounded length: 2 x 24 = 48 > 40 splits the first pair.
  const auto tight = cut_batches(lengths, {2, 40, 8, 0});
  EXPECT_EQ(indices_of(tight), (std::vector<std::vector<size_t>>{{2}, {0, 1}}));
}

TEST(LengthBucketerTest, RoundingStopsAtTheModelsPositions) {
  const auto plans = cut_batches({510, 509}, {4, 100000, 8, 512});
  ASSERT_EQ(plans.size(), 1u);
  EXPECT_EQ(plans[0].padded_length, 512u);
  EXPECT_EQ(cut_batches({513}, {4, 100000, 8, 512})[0].padded_length, 513u)
      << "never shorter than the sequence itself";
}

TEST(LengthBucketerTest, OversizedSequenceGoesAlone) {
  const auto plans = cut_batches({100, 4, 4}, {8, 50, 1, 0});
  EXPECT_EQ(indices_of(plans), (std::vector<std::vector<size_t>>{{0}, {1, 2}}));
}

TEST(LengthBucketerTest, EqualLengthsKeepInputOrder) {
  const auto plans = cut_batches({5, 5, 5, 5, 5}, {2, 1000, 1, 0});
  EXPECT_EQ(indices_of(plans), (std::vector<std::vector<size_t>>{{0, 1}, {2, 3}, {4}}));
}

TEST(LengthBucketerTest, CutsWhereTheLengthDropsWhenThatSavesMoreThanAPass) {
  // Eight of 100 tokens, then eight of 50: one batch of 16 pads the short half to 100 (800
  // padding tokens), two batches cost one pass more (64) and no padding.
  std::vector<size_t> lengths(8, 100);
  lengths.resize(16, 50);
  BatchLimits limits{16, 100000, 1, 0};
  const auto plans = cut_batches(lengths, limits);
  ASSERT_EQ(plans.size(), 2u);
  EXPECT_EQ(plans[0].padded_length, 100u);
  EXPECT_EQ(plans[1].padded_length, 50u);
  EXPECT_EQ(plans[0].padded_tokens() + plans[1].padded_tokens(), 1200u);
  // Where a pass costs more than the padding it saves, one batch.
  limits.batch_cost_tokens = 1000;
  EXPECT_EQ(cut_batches(lengths, limits).size(), 1u);
}

TEST(LengthBucketerTest, RealisticLengthsArePaddedByUnderThreePercent) {
  // 128 pairs of 275 to 512 tokens, as bench/peer_bench.py draws them, in batches of up to 32:
  // cut every 32 sequences they were padded by 9%.
  std::mt19937 random(3);
  std::vector<size_t> lengths(128);
  for (auto& length : lengths) length = 275 + random() % 238;
  const auto plans = cut_batches(lengths, {32, 32768, 8, 512});
  size_t real = 0, padded = 0;
  for (const auto& plan : plans) {
    real += plan.real_tokens;
    padded += plan.padded_tokens();
  }
  const double efficiency = static_cast<double>(real) / static_cast<double>(padded);
  std::cout << plans.size() << " batches, padding efficiency " << efficiency << "\n";
  EXPECT_GE(efficiency, 0.97);
  EXPECT_LE(plans.size(), 32u) << "not one pass per pair";
}

TEST(LengthBucketerTest, EmptyInputGivesNoBatches) { EXPECT_TRUE(cut_batches({}, {}).empty()); }

TEST(LengthBucketerTest, GroupsOfTwoOrMoreKeepToBatchesOfTheirOwn) {
  // Two records of three passages each, interleaved in length, and two sequences of no group.
  // Sorted by length alone, each batch of three would mix the records.
  const std::vector<size_t> lengths = {90, 60, 30, 80, 50, 20, 70, 40};
  const std::vector<size_t> groups = {0, 0, 0, 1, 1, 1, kNoGroup, 5};
  const BatchLimits limits{3, 100000, 1, 0};
  EXPECT_EQ(indices_of(cut_batches(lengths, limits)),
            (std::vector<std::vector<size_t>>{{0, 3, 6}, {1, 4, 7}, {2, 5}}));
  const auto plans = cut_grouped_batches(lengths, groups, limits);
  EXPECT_EQ(indices_of(plans),
            (std::vector<std::vector<size_t>>{{0, 1, 2}, {3, 4, 5}, {6, 7}}))
      << "group 0, group 1, then the ungrouped sequence and the group of one together";
  EXPECT_EQ(plans[0].padded_length, 90u);
  EXPECT_EQ(plans[1].padded_length, 80u);
  EXPECT_EQ(plans[2].real_tokens, 110u);
}

TEST(LengthBucketerTest, AGroupIsCutUnderTheSameLimits) {
  // One record of five passages under a batch size of two: its own batches, longest first.
  const std::vector<size_t> lengths = {10, 50, 28, 48, 30, 99};
  const std::vector<size_t> groups = {7, 7, 7, 7, 7, kNoGroup};
  const auto plans = cut_grouped_batches(lengths, groups, {2, 100000, 1, 0});
  EXPECT_EQ(indices_of(plans),
            (std::vector<std::vector<size_t>>{{1, 3}, {4, 2}, {0}, {5}}));
  EXPECT_TRUE(cut_grouped_batches({}, {}, {}).empty());
}

TEST(LengthBucketerTest, EveryIndexExactlyOnceUnderEveryLimit) {
  std::mt19937 random(7);
  std::vector<size_t> lengths(500);
  for (auto& length : lengths) length = 1 + random() % 300;
  for (size_t batch : {1, 3, 16, 64}) {
    for (int64_t tokens : {300, 1024, 5000}) {
      const auto plans = cut_batches(lengths, {batch, tokens, 8, 512});
      std::vector<size_t> seen;
      for (const auto& plan : plans) {
        EXPECT_LE(plan.indices.size(), batch);
        if (plan.indices.size() > 1) {
          EXPECT_LE(static_cast<int64_t>(plan.padded_tokens()), tokens);
        }
        for (size_t index : plan.indices) {
          EXPECT_LE(lengths[index], plan.padded_length);
          seen.push_back(index);
        }
      }
      std::sort(seen.begin(), seen.end());
      std::vector<size_t> all(lengths.size());
      std::iota(all.begin(), all.end(), 0);
      EXPECT_EQ(seen, all) << "batch " << batch << " tokens " << tokens;
    }
  }
}

}  // namespace
}  // namespace engine
