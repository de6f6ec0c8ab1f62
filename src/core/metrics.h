// A small Prometheus registry (text exposition format 0.0.4, no external dependencies).
// Counters and histograms accumulate as events happen; gauges are set when /metrics is read.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace allm {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  // The process-wide registry, with every allm_* family defined.
  static Metrics& global();

  void define_counter(const std::string& name, const std::string& help);
  void define_gauge(const std::string& name, const std::string& help);
  void define_histogram(const std::string& name, const std::string& help,
                        std::vector<double> upper_bounds);

  // Unknown names are ignored, so that a typo cannot crash a request.
  void add(const std::string& name, const MetricLabels& labels, double by = 1);
  void set(const std::string& name, const MetricLabels& labels, double value);
  void observe(const std::string& name, const MetricLabels& labels, double value);
  // Drops every series of a gauge family (before setting the ones that exist now).
  void reset(const std::string& name);
  // Current value of a counter or gauge series; 0 when absent (for tests and logs).
  double value(const std::string& name, const MetricLabels& labels) const;

  std::string render() const;

 private:
  enum class Type { COUNTER, GAUGE, HISTOGRAM };
  struct Series {
    double value = 0;                   // counter / gauge
    std::vector<uint64_t> bucket_hits;  // histogram, one per upper bound (not cumulative)
    double sum = 0;
    uint64_t count = 0;
  };
  struct Family {
    Type type = Type::COUNTER;
    std::string help;
    std::vector<double> upper_bounds;
    std::map<std::string, Series> series;  // key: rendered label set, e.g. {model="a"}
  };

  void define(const std::string& name, Type type, const std::string& help,
              std::vector<double> upper_bounds);
  Family* find(const std::string& name, Type type);

  mutable std::mutex mutex_;
  std::map<std::string, Family> families_;
};

// `{a="x",b="y"}` with Prometheus escaping; "" for no labels.
std::string render_labels(const MetricLabels& labels);
// A sample value as Prometheus reads it: integers without a fraction, +Inf, NaN.
std::string format_metric_value(double value);

}  // namespace allm
