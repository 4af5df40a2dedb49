#include "reconciler/api/metrics.h"

#include <array>
#include <charconv>
#include <cmath>

namespace flotilla::api {
namespace {

std::string EscapeHelp(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string EscapeLabel(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="x",b="y"} (with an extra label appended, for le), or "" with no labels.
std::string Labels(const std::vector<std::string>& names, const LabelValues& values,
                   const std::string& extra_name = "", const std::string& extra_value = "") {
  std::string out;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    out += (out.empty() ? "{" : ",") + names[i] + "=\"" + EscapeLabel(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    out += (out.empty() ? "{" : ",") + extra_name + "=\"" + extra_value + "\"";
  }
  return out.empty() ? out : out + "}";
}

}  // namespace

std::string FormatValue(double value) {
  if (std::isnan(value)) {
    return "NaN";
  }
  if (std::isinf(value)) {
    return value > 0 ? "+Inf" : "-Inf";
  }
  if (value == std::floor(value) && std::fabs(value) < 9007199254740992.0) {
    return std::to_string(static_cast<int64_t>(value));
  }
  std::array<char, 32> buffer{};
  const auto [end, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  return ec == std::errc() ? std::string(buffer.data(), end) : std::string("NaN");
}

void CounterFamily::Inc(const LabelValues& label_values, double by) {
  if (label_values.size() != labels_ || !(by >= 0)) {
    return;
  }
  std::lock_guard lock(mu_);
  series_[label_values] += by;
}

double CounterFamily::Value(const LabelValues& label_values) const {
  std::lock_guard lock(mu_);
  auto it = series_.find(label_values);
  return it == series_.end() ? 0 : it->second;
}

void GaugeFamily::Set(const LabelValues& label_values, double value) {
  if (label_values.size() != labels_) {
    return;
  }
  std::lock_guard lock(mu_);
  series_[label_values] = value;
}

double GaugeFamily::Value(const LabelValues& label_values) const {
  std::lock_guard lock(mu_);
  auto it = series_.find(label_values);
  return it == series_.end() ? 0 : it->second;
}

void GaugeFamily::Replace(const std::vector<std::pair<LabelValues, double>>& series) {
  std::map<LabelValues, double> next;
  for (const auto& [values, value] : series) {
    if (values.size() == labels_) {
      next[values] = value;
    }
  }
  std::lock_guard lock(mu_);
  series_ = std::move(next);
}

void HistogramFamily::Observe(const LabelValues& label_values, double value) {
  if (label_values.size() != labels_) {
    return;
  }
  std::lock_guard lock(mu_);
  Series& s = series_[label_values];
  if (s.buckets.empty()) {
    s.buckets.assign(bounds_.size(), 0);
  }
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (value <= bounds_[i]) {
      ++s.buckets[i];
      break;
    }
  }
  ++s.count;
  s.sum += value;
}

uint64_t HistogramFamily::Count(const LabelValues& label_values) const {
  std::lock_guard lock(mu_);
  auto it = series_.find(label_values);
  return it == series_.end() ? 0 : it->second.count;
}

CounterFamily& MetricsRegistry::AddCounter(std::string name, std::string help,
                                           std::vector<std::string> label_names) {
  auto family = std::make_unique<Family>();
  family->counter.reset(new CounterFamily(label_names.size()));
  family->name = std::move(name);
  family->help = std::move(help);
  family->label_names = std::move(label_names);
  CounterFamily& counter = *family->counter;
  std::lock_guard lock(mu_);
  families_.push_back(std::move(family));
  return counter;
}

GaugeFamily& MetricsRegistry::AddGauge(std::string name, std::string help,
                                       std::vector<std::string> label_names) {
  auto family = std::make_unique<Family>();
  family->gauge.reset(new GaugeFamily(label_names.size()));
  family->name = std::move(name);
  family->help = std::move(help);
  family->label_names = std::move(label_names);
  GaugeFamily& gauge = *family->gauge;
  std::lock_guard lock(mu_);
  families_.push_back(std::move(family));
  return gauge;
}

HistogramFamily& MetricsRegistry::AddHistogram(std::string name, std::string help,
                                               std::vector<std::string> label_names,
                                               std::vector<double> buckets) {
  auto family = std::make_unique<Family>();
  family->histogram.reset(new HistogramFamily(label_names.size(), std::move(buckets)));
  family->name = std::move(name);
  family->help = std::move(help);
  family->label_names = std::move(label_names);
  HistogramFamily& histogram = *family->histogram;
  std::lock_guard lock(mu_);
  families_.push_back(std::move(family));
  return histogram;
}

std::string MetricsRegistry::Render() const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& f : families_) {
    const char* type = f->counter ? "counter" : f->gauge ? "gauge" : "histogram";
    out += "# HELP " + f->name + " " + EscapeHelp(f->help) + "\n";
    out += "# TYPE " + f->name + " " + type + "\n";
    const bool unlabelled = f->label_names.empty();
    if (f->counter || f->gauge) {
      std::map<LabelValues, double> series;
      if (f->counter) {
        std::lock_guard family(f->counter->mu_);
        series = f->counter->series_;
      } else {
        std::lock_guard family(f->gauge->mu_);
        series = f->gauge->series_;
      }
      if (unlabelled && series.empty()) {
        series[{}] = 0;
      }
      for (const auto& [values, value] : series) {
        out += f->name + Labels(f->label_names, values) + " " + FormatValue(value) + "\n";
      }
      continue;
    }
    const HistogramFamily& h = *f->histogram;
    std::map<LabelValues, HistogramFamily::Series> series;
    {
      std::lock_guard family(h.mu_);
      series = h.series_;
    }
    if (unlabelled && series.empty()) {
      series[{}].buckets.assign(h.bounds_.size(), 0);
    }
    for (const auto& [values, s] : series) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i < h.bounds_.size(); ++i) {
        cumulative += i < s.buckets.size() ? s.buckets[i] : 0;
        out += f->name + "_bucket" +
               Labels(f->label_names, values, "le", FormatValue(h.bounds_[i])) + " " +
               std::to_string(cumulative) + "\n";
      }
      out += f->name + "_bucket" + Labels(f->label_names, values, "le", "+Inf") + " " +
             std::to_string(s.count) + "\n";
      out += f->name + "_sum" + Labels(f->label_names, values) + " " + FormatValue(s.sum) + "\n";
      out += f->name + "_count" + Labels(f->label_names, values) + " " + std::to_string(s.count) +
             "\n";
    }
  }
  return out;
}

std::vector<double> DurationBuckets() {
  return {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800};
}

}  // namespace flotilla::api
