#pragma once

// A small Prometheus metrics registry: counters, gauges and histograms with labels, rendered in
// the text exposition format 0.0.4 (what GET /metrics serves). Hand-written so that the binary
// needs no client library; tests read the output with Prometheus' own parser.
//
// Families are registered once, up front; the references returned live as long as the
// registry. Label values are given in the order of the family's label names.
//
// Thread-safety: every method may be called from any thread at once.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace flotilla::api {

using LabelValues = std::vector<std::string>;

class CounterFamily {
 public:
  // REQUIRES: by >= 0; label_values.size() == the family's label count (otherwise ignored).
  void Inc(const LabelValues& label_values, double by = 1.0);
  double Value(const LabelValues& label_values) const;  // 0 when absent

 private:
  friend class MetricsRegistry;
  explicit CounterFamily(size_t labels) : labels_(labels) {}
  size_t labels_;
  mutable std::mutex mu_;
  std::map<LabelValues, double> series_;
};

class GaugeFamily {
 public:
  void Set(const LabelValues& label_values, double value);
  double Value(const LabelValues& label_values) const;  // 0 when absent
  // Replaces every series at once (series not in `series` disappear): for gauges computed from
  // a snapshot.
  void Replace(const std::vector<std::pair<LabelValues, double>>& series);

 private:
  friend class MetricsRegistry;
  explicit GaugeFamily(size_t labels) : labels_(labels) {}
  size_t labels_;
  mutable std::mutex mu_;
  std::map<LabelValues, double> series_;
};

class HistogramFamily {
 public:
  void Observe(const LabelValues& label_values, double value);
  uint64_t Count(const LabelValues& label_values) const;  // 0 when absent

 private:
  friend class MetricsRegistry;
  struct Series {
    std::vector<uint64_t> buckets;  // per upper bound, not cumulative
    uint64_t count = 0;
    double sum = 0;
  };
  HistogramFamily(size_t labels, std::vector<double> bounds)
      : labels_(labels), bounds_(std::move(bounds)) {}
  size_t labels_;
  std::vector<double> bounds_;  // ascending; +Inf is implicit
  mutable std::mutex mu_;
  std::map<LabelValues, Series> series_;
};

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // REQUIRES: a unique name matching [a-zA-Z_:][a-zA-Z0-9_:]*, label names matching
  // [a-zA-Z_][a-zA-Z0-9_]* (and not "le" for histograms), buckets ascending.
  CounterFamily& AddCounter(std::string name, std::string help,
                            std::vector<std::string> label_names);
  GaugeFamily& AddGauge(std::string name, std::string help, std::vector<std::string> label_names);
  HistogramFamily& AddHistogram(std::string name, std::string help,
                                std::vector<std::string> label_names, std::vector<double> buckets);

  // Every family in registration order: "# HELP", "# TYPE", then its samples sorted by label
  // values. A family without labels always shows its one sample (0 until it moves); a family
  // with labels shows nothing until a series exists.
  std::string Render() const;

 private:
  struct Family {
    std::string name;
    std::string help;
    std::vector<std::string> label_names;
    std::unique_ptr<CounterFamily> counter;
    std::unique_ptr<GaugeFamily> gauge;
    std::unique_ptr<HistogramFamily> histogram;
  };
  mutable std::mutex mu_;  // guards families_ (the vector, not the families)
  std::vector<std::unique_ptr<Family>> families_;
};

// Bucket upper bounds in seconds for durations from 50 ms to 30 min.
std::vector<double> DurationBuckets();

// A sample value as Prometheus writes it: integers without a decimal point, +Inf, -Inf, NaN.
std::string FormatValue(double value);

}  // namespace flotilla::api
