#include "api/access_log.h"

#include <cstdio>
#include <optional>

#include "base/log.h"
#include "base/random_id.h"
#include "core/metrics.h"

namespace allm {

namespace {

thread_local AccessRecord t_record;
thread_local std::optional<std::chrono::steady_clock::time_point> t_connection_accepted;

std::string logfmt_value(const std::string& value) {
  if (!value.empty() && value.find_first_of(" \"=\\\n") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out += '\\';
    out += c == '\n' ? ' ' : c;
  }
  return out + "\"";
}

}  // namespace

void note_connection_accepted(std::chrono::steady_clock::time_point accepted) {
  t_connection_accepted = accepted;
}

AccessRecord& current_access() {
  return t_record;
}

void begin_access(const httplib::Request&, httplib::Response& res) {
  end_streamed_access();  // a stream whose body was never written (server stopping)
  t_record = AccessRecord{};
  t_record.id = random_id("req_");
  t_record.started = t_connection_accepted.value_or(std::chrono::steady_clock::now());
  t_connection_accepted.reset();
  res.set_header("X-Request-Id", t_record.id);
}

void record_error(const Error& error) {
  if (!t_record.error_code.empty()) return;  // counted once per request
  const std::string code =
      error.request_code.empty() ? error_code_name(error.code) : error.request_code;
  Metrics::global().add("allm_errors_total", {{"code", code}});
  t_record.error_code = code;
}

std::string endpoint_label(const std::string& method, const std::string& path) {
  static const char* const kFixed[] = {"/v1/responses",
                                       "/v1/chat/completions",
                                       "/v1/embeddings",
                                       "/v1/completions",
                                       "/v1/messages",
                                       "/v1/messages/count_tokens",
                                       "/v1/audio/transcriptions",
                                       "/v1/audio/translations",
                                       "/v1/images/generations",
                                       "/v1/images/edits",
                                       "/v1/models",
                                       "/health",
                                       "/health/ready",
                                       "/metrics"};
  for (const char* fixed : kFixed) {
    if (path == fixed) return method + " " + path;
  }
  if (path.rfind("/v1/responses/", 0) == 0) return method + " /v1/responses/{id}";
  if (path.rfind("/v1/models/", 0) == 0) return method + " /v1/models/{id}";
  return method == "OPTIONS" ? "OPTIONS *" : "other";
}

std::string format_access_line(const AccessRecord& r, const std::string& method,
                               const std::string& path, int status, double duration_seconds) {
  char numbers[64];
  std::string line = "access id=" + r.id + " method=" + method + " path=" + logfmt_value(path) +
                     " status=" + std::to_string(status);
  if (!r.model.empty()) line += " model=" + logfmt_value(r.model);
  if (!r.end_user.empty()) line += " user=" + logfmt_value(r.end_user);
  if (r.input_tokens >= 0) {
    line += " input_tokens=" + std::to_string(r.input_tokens) +
            " cached_tokens=" + std::to_string(r.cached_tokens) +
            " output_tokens=" + std::to_string(r.output_tokens);
  }
  if (r.time_to_first_token >= 0) {
    std::snprintf(numbers, sizeof numbers, " ttft_ms=%.1f", r.time_to_first_token * 1000);
    line += numbers;
  }
  std::snprintf(numbers, sizeof numbers, " duration_ms=%.1f", duration_seconds * 1000);
  line += numbers;
  if (!r.error_code.empty()) line += " error=" + logfmt_value(r.error_code);
  return line;
}

namespace {

void emit_access_line(AccessRecord& r) {
  if (r.id.empty()) {  // refused before routing (e.g. a body over the limit)
    r.id = random_id("req_");
    r.started = std::chrono::steady_clock::now();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - r.started).count();
  const std::string endpoint = endpoint_label(r.method, r.path);
  Metrics& metrics = Metrics::global();
  metrics.add("allm_http_requests_total",
              {{"endpoint", endpoint}, {"status", std::to_string(r.status)}});
  metrics.observe("allm_http_request_duration_seconds", {{"endpoint", endpoint}}, seconds);
  ALLM_LOG_INFO("%s", format_access_line(r, r.method, r.path, r.status, seconds).c_str());
  r = AccessRecord{};  // the next request on this thread starts clean
}

}  // namespace

void finish_access(const httplib::Request& req, const httplib::Response& res) {
  AccessRecord& r = t_record;
  r.method = req.method;
  r.path = req.path;
  r.status = res.status;
  if (res.get_header_value("Content-Type").rfind("text/event-stream", 0) == 0) {
    r.streaming = true;
    return;
  }
  emit_access_line(r);
}

void end_streamed_access() {
  if (t_record.streaming) emit_access_line(t_record);
}

}  // namespace allm
