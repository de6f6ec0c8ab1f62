#include "core/metrics.h"

#include <cmath>
#include <cstdio>

namespace allm {

namespace {

std::string escape_label_value(const std::string& value) {
  std::string out;
  for (char c : value) {
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

// `{a="x",le="0.5"}`: the series' labels plus one more (the histogram bucket bound).
std::string with_label(const std::string& rendered, const std::string& name,
                       const std::string& value) {
  const std::string extra = name + "=\"" + value + "\"";
  if (rendered.empty()) return "{" + extra + "}";
  return rendered.substr(0, rendered.size() - 1) + "," + extra + "}";
}

void define_standard_metrics(Metrics& m) {
  m.define_counter("allm_http_requests_total", "HTTP requests by endpoint and status code");
  m.define_histogram("allm_http_request_duration_seconds",
                     "HTTP request duration, until the last byte was written, by endpoint",
                     {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120});
  m.define_counter("allm_errors_total", "failed requests by error code (spec code or OpenAI code)");
  m.define_counter("allm_tokens_input_total", "prompt tokens by model");
  m.define_counter("allm_tokens_cached_total", "prompt tokens reused from the KV cache by model");
  m.define_counter("allm_tokens_output_total", "generated tokens by model");
  m.define_histogram("allm_time_to_first_token_seconds",
                     "time from the request reaching the model to its first generated token",
                     {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  m.define_histogram("allm_time_per_output_token_seconds",
                     "time between consecutive generated tokens of one request",
                     {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1});
  m.define_counter("allm_rejected_requests_total",
                   "requests refused before running, by model and reason (queue_full, timeout)");
  m.define_counter("allm_model_loads_total", "model loads by model and result (ok, error)");
  m.define_counter("allm_model_unloads_total",
                   "model unloads by model and reason (keep_alive, memory, shutdown)");
  m.define_gauge("allm_model_loaded", "1 for each loaded model, by model and modality");
  m.define_gauge("allm_model_memory_bytes",
                 "memory charged to each loaded model (the larger of estimate and measured)");
  m.define_gauge("allm_model_vram_bytes", "the part of allm_model_memory_bytes in GPU memory");
  m.define_gauge("allm_memory_budget_bytes", "the --max-memory RAM budget (0: none)");
  m.define_gauge("allm_vram_budget_bytes", "the --max-memory GPU memory budget (0: none)");
  m.define_gauge("allm_queue_depth", "requests waiting for a free sequence, by model");
  m.define_gauge("allm_active_sequences", "sequences generating or reading a prompt, by model");
  m.define_counter("allm_store_errors_total",
                   "failed response store operations by op (put, get, delete, prune)");
  m.define_counter("allm_store_pruned_total",
                   "stored responses deleted by --store-max-age or --store-max-bytes");
}

}  // namespace

std::string render_labels(const MetricLabels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ",";
    out += labels[i].first + "=\"" + escape_label_value(labels[i].second) + "\"";
  }
  return out + "}";
}

std::string format_metric_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", value);
  } else {
    std::snprintf(buf, sizeof buf, "%.9g", value);
  }
  return buf;
}

Metrics& Metrics::global() {
  static Metrics* metrics = [] {
    auto* m = new Metrics();  // never destroyed: threads may still report during exit
    define_standard_metrics(*m);
    return m;
  }();
  return *metrics;
}

void Metrics::define(const std::string& name, Type type, const std::string& help,
                     std::vector<double> upper_bounds) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family& family = families_[name];
  family.type = type;
  family.help = help;
  family.upper_bounds = std::move(upper_bounds);
}

void Metrics::define_counter(const std::string& name, const std::string& help) {
  define(name, Type::COUNTER, help, {});
}

void Metrics::define_gauge(const std::string& name, const std::string& help) {
  define(name, Type::GAUGE, help, {});
}

void Metrics::define_histogram(const std::string& name, const std::string& help,
                               std::vector<double> upper_bounds) {
  define(name, Type::HISTOGRAM, help, std::move(upper_bounds));
}

Metrics::Family* Metrics::find(const std::string& name, Type type) {
  auto it = families_.find(name);
  return it != families_.end() && it->second.type == type ? &it->second : nullptr;
}

void Metrics::add(const std::string& name, const MetricLabels& labels, double by) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (Family* family = find(name, Type::COUNTER)) family->series[render_labels(labels)].value += by;
}

void Metrics::set(const std::string& name, const MetricLabels& labels, double value) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (Family* family = find(name, Type::GAUGE)) family->series[render_labels(labels)].value = value;
}

void Metrics::observe(const std::string& name, const MetricLabels& labels, double value) {
  std::lock_guard<std::mutex> lock(mutex_);
  Family* family = find(name, Type::HISTOGRAM);
  if (!family) return;
  Series& series = family->series[render_labels(labels)];
  series.bucket_hits.resize(family->upper_bounds.size());
  for (size_t i = 0; i < family->upper_bounds.size(); ++i) {
    if (value <= family->upper_bounds[i]) {
      ++series.bucket_hits[i];
      break;
    }
  }
  series.sum += value;
  ++series.count;
}

void Metrics::reset(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (Family* family = find(name, Type::GAUGE)) family->series.clear();
}

double Metrics::value(const std::string& name, const MetricLabels& labels) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto family = families_.find(name);
  if (family == families_.end()) return 0;
  auto series = family->second.series.find(render_labels(labels));
  return series == family->second.series.end() ? 0 : series->second.value;
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const auto& [name, family] : families_) {
    const char* type = family.type == Type::COUNTER ? "counter"
                       : family.type == Type::GAUGE ? "gauge"
                                                    : "histogram";
    out += "# HELP " + name + " " + family.help + "\n";
    out += "# TYPE " + name + " " + type + "\n";
    for (const auto& [labels, series] : family.series) {
      if (family.type != Type::HISTOGRAM) {
        out += name + labels + " " + format_metric_value(series.value) + "\n";
        continue;
      }
      uint64_t cumulative = 0;
      for (size_t i = 0; i < family.upper_bounds.size(); ++i) {
        cumulative += i < series.bucket_hits.size() ? series.bucket_hits[i] : 0;
        out += name + "_bucket" +
               with_label(labels, "le", format_metric_value(family.upper_bounds[i])) + " " +
               std::to_string(cumulative) + "\n";
      }
      out += name + "_bucket" + with_label(labels, "le", "+Inf") + " " +
             std::to_string(series.count) + "\n";
      out += name + "_sum" + labels + " " + format_metric_value(series.sum) + "\n";
      out += name + "_count" + labels + " " + std::to_string(series.count) + "\n";
    }
  }
  return out;
}

}  // namespace allm
