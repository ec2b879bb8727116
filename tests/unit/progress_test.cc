#include "engine/jobs/progress.h"

#include <gtest/gtest.h>

namespace engine {
namespace {

TEST(ProgressTest, LineShowsDoneRateAndEta) {
  EXPECT_EQ(ProgressReporter::format_line(1200, 5000, 4.0),
            "1200/5000 records (24.0%), 300.0 records/s, ETA 0:00:13");
  EXPECT_EQ(ProgressReporter::format_line(10, 7210, 1.0),
            "10/7210 records (0.1%), 10.0 records/s, ETA 0:12:00");
  EXPECT_EQ(ProgressReporter::format_line(0, 10, 0.0),
            "0/10 records (0.0%), 0.0 records/s, ETA unknown");
  EXPECT_EQ(ProgressReporter::format_line(30, 0, 2.0), "30 records, 15.0 records/s");
}

}  // namespace
}  // namespace engine
