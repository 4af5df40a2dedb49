// The hand-written Prometheus registry: value formatting, escaping, histogram buckets, and the
// series a family shows before and after it moves. (api_test reads a live /metrics with
// Prometheus' own parser; these pin the exact text.)

#include "reconciler/api/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/text_files.h"

namespace flotilla::api {
namespace {

using testing::Contains;

TEST(MetricsTest, FormatsValuesAsPrometheusWritesThem) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(-3), "-3");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(1.7e9), "1700000000");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatValue(1e300), "1e+300");
}

TEST(MetricsTest, UnlabelledFamiliesShowZeroAndLabelledOnesNothingUntilTheyMove) {
  MetricsRegistry registry;
  CounterFamily& plain = registry.AddCounter("demo_plain_total", "A counter.", {});
  registry.AddCounter("demo_labelled_total", "Another.", {"kind"});
  std::string text = registry.Render();
  EXPECT_TRUE(Contains(text, "# HELP demo_plain_total A counter.\n"));
  EXPECT_TRUE(Contains(text, "# TYPE demo_plain_total counter\n"));
  EXPECT_TRUE(Contains(text, "demo_plain_total 0\n"));
  EXPECT_TRUE(Contains(text, "# TYPE demo_labelled_total counter\n"));
  EXPECT_FALSE(Contains(text, "demo_labelled_total{"));
  plain.Inc({}, 2);
  plain.Inc({}, -1);  // counters never go down: ignored
  EXPECT_EQ(plain.Value({}), 2);
  EXPECT_TRUE(Contains(registry.Render(), "demo_plain_total 2\n"));
}

TEST(MetricsTest, LabelValuesAreEscapedAndSeriesSorted) {
  MetricsRegistry registry;
  CounterFamily& c = registry.AddCounter("demo_total", "Help with \\ and\nnewline.", {"a", "b"});
  c.Inc({"z", "1"});
  c.Inc({"quote\"back\\slash\nline", "2"}, 3);
  c.Inc({"only-one-value"});  // wrong label count: ignored
  const std::string text = registry.Render();
  EXPECT_TRUE(Contains(text, "# HELP demo_total Help with \\\\ and\\nnewline.\n")) << text;
  const size_t escaped = text.find("demo_total{a=\"quote\\\"back\\\\slash\\nline\",b=\"2\"} 3\n");
  const size_t plain = text.find("demo_total{a=\"z\",b=\"1\"} 1\n");
  ASSERT_NE(escaped, std::string::npos) << text;
  ASSERT_NE(plain, std::string::npos) << text;
  EXPECT_LT(escaped, plain) << "sorted by label values";
  EXPECT_FALSE(Contains(text, "only-one-value"));
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  MetricsRegistry registry;
  HistogramFamily& h = registry.AddHistogram("demo_seconds", "Durations.", {"kind"}, {0.5, 1, 5});
  h.Observe({"x"}, 0.1);
  h.Observe({"x"}, 0.5);  // on a bound: counted in that bucket
  h.Observe({"x"}, 3);
  h.Observe({"x"}, 60);  // above every bound: only +Inf
  EXPECT_EQ(h.Count({"x"}), 4u);
  const std::string text = registry.Render();
  EXPECT_TRUE(Contains(text, "# TYPE demo_seconds histogram\n"));
  EXPECT_TRUE(Contains(text, "demo_seconds_bucket{kind=\"x\",le=\"0.5\"} 2\n")) << text;
  EXPECT_TRUE(Contains(text, "demo_seconds_bucket{kind=\"x\",le=\"1\"} 2\n")) << text;
  EXPECT_TRUE(Contains(text, "demo_seconds_bucket{kind=\"x\",le=\"5\"} 3\n")) << text;
  EXPECT_TRUE(Contains(text, "demo_seconds_bucket{kind=\"x\",le=\"+Inf\"} 4\n")) << text;
  EXPECT_TRUE(Contains(text, "demo_seconds_sum{kind=\"x\"} 63.6\n")) << text;
  EXPECT_TRUE(Contains(text, "demo_seconds_count{kind=\"x\"} 4\n")) << text;
}

TEST(MetricsTest, UnlabelledHistogramShowsEmptyBuckets) {
  MetricsRegistry registry;
  registry.AddHistogram("demo_seconds", "Durations.", {}, {1});
  const std::string text = registry.Render();
  EXPECT_TRUE(Contains(text, "demo_seconds_bucket{le=\"1\"} 0\n")) << text;
  EXPECT_TRUE(Contains(text, "demo_seconds_bucket{le=\"+Inf\"} 0\n")) << text;
  EXPECT_TRUE(Contains(text, "demo_seconds_sum 0\n")) << text;
  EXPECT_TRUE(Contains(text, "demo_seconds_count 0\n")) << text;
}

TEST(MetricsTest, GaugeReplaceDropsSeriesThatAreGone) {
  MetricsRegistry registry;
  GaugeFamily& g = registry.AddGauge("demo_hosts", "Hosts.", {"state"});
  g.Replace({{{"online"}, 3}, {{"offline"}, 1}});
  EXPECT_TRUE(Contains(registry.Render(), "demo_hosts{state=\"offline\"} 1\n"));
  g.Replace({{{"online"}, 4}});
  const std::string text = registry.Render();
  EXPECT_FALSE(Contains(text, "offline")) << text;
  EXPECT_TRUE(Contains(text, "demo_hosts{state=\"online\"} 4\n")) << text;
  g.Set({"online"}, 5);
  EXPECT_EQ(g.Value({"online"}), 5);
}

TEST(MetricsTest, ConcurrentIncrementsAreAllCounted) {
  MetricsRegistry registry;
  CounterFamily& c = registry.AddCounter("demo_total", "Concurrent.", {"t"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&c, &registry, t] {
      for (int i = 0; i < 1000; ++i) {
        c.Inc({std::to_string(t % 2)});
        if (i % 100 == 0) {
          (void)registry.Render();
        }
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(c.Value({"0"}) + c.Value({"1"}), 4000);
}

}  // namespace
}  // namespace flotilla::api
