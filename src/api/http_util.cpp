#include "api/http_util.h"

#include <chrono>

#include "api/access_log.h"
#include "core/text_manager.h"

namespace allm {

int http_status(const Error& error) {
  if (!error.request_code.empty()) {
    if (error.request_code == "model_not_found" || error.request_code == "not_found") return 404;
    if (error.request_code == "payload_too_large") return 413;
    if (error.request_code == "unauthorized" || error.request_code == "invalid_api_key") return 401;
    if (error.request_code == "rate_limit_exceeded") return 429;
    if (error.request_code == "store_unavailable") return 503;
    return 400;
  }
  // A request field that is not offered: the request is what has to change.
  if (error.code == ErrorCode::UNSUPPORTED && !error.param.empty()) return 400;
  switch (error.code) {
    case ErrorCode::OK: return 200;
    case ErrorCode::OOM_VRAM:
    case ErrorCode::OOM_RAM: return 507;
    case ErrorCode::MODEL_CORRUPT:
    case ErrorCode::LOAD_FAILED: return 422;
    case ErrorCode::TIMEOUT: return 504;
    case ErrorCode::CANCELLED: return 499;
    case ErrorCode::UNSUPPORTED: return 501;
    case ErrorCode::FORMAT_MISMATCH: return 400;
    case ErrorCode::INTERNAL: return 500;
  }
  return 500;
}

static const char* error_type(const Error& error) {
  if (!error.request_code.empty()) {
    if (error.request_code == "unauthorized") return "authentication_error";
    if (error.request_code == "rate_limit_exceeded") return "rate_limit_error";
    if (error.request_code == "store_unavailable") return "server_error";
    return "invalid_request_error";
  }
  if (error.code == ErrorCode::UNSUPPORTED && !error.param.empty()) return "invalid_request_error";
  switch (error.code) {
    case ErrorCode::FORMAT_MISMATCH: return "invalid_request_error";
    case ErrorCode::INTERNAL: return "server_error";
    default: return "engine_error";
  }
}

json error_body(const Error& error) {
  json inner;
  inner["message"] = error.message;
  inner["type"] = error_type(error);
  inner["param"] = error.param.empty() ? json(nullptr) : json(error.param);
  inner["code"] = error.request_code.empty() ? error_code_name(error.code) : error.request_code;
  return json{{"error", inner}};
}

void send_json(httplib::Response& res, const json& body, int status) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

// Anthropic's error type for an HTTP status.
static const char* anthropic_error_type(int status) {
  switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503: return "overloaded_error";
    default: return status < 500 ? "invalid_request_error" : "api_error";
  }
}

json anthropic_error_body(const Error& error) {
  std::string message = error.message;
  if (!error.param.empty()) message = error.param + ": " + message;
  return {{"type", "error"},
          {"error", {{"type", anthropic_error_type(http_status(error))}, {"message", message}}}};
}

static void send_error_body(httplib::Response& res, const Error& error, const json& body) {
  record_error(error);
  const int status = http_status(error);
  if (status == 429 || status == 503) {
    res.set_header("Retry-After", std::to_string(kRetryAfterSeconds));
  }
  send_json(res, body, status);
}

void send_error(httplib::Response& res, const Error& error) {
  send_error_body(res, error, error_body(error));
}

void send_anthropic_error(httplib::Response& res, const Error& error) {
  send_error_body(res, error, anthropic_error_body(error));
}

bool json_nesting_exceeds(const std::string& text, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

bool parse_json_object(const std::string& text, json* body, Error* error) {
  if (json_nesting_exceeds(text, kMaxJsonDepth)) {
    *error = request_error("the request body nests arrays and objects deeper than " +
                               std::to_string(kMaxJsonDepth) + " levels",
                           "", "invalid_json");
    return false;
  }
  try {
    *body = json::parse(text);
  } catch (const std::exception& e) {
    *error = request_error(std::string("the request body is not valid JSON: ") + e.what(), "",
                           "invalid_json");
    return false;
  }
  if (!body->is_object()) {
    *error = request_error("the request body must be a JSON object", "", "invalid_json");
    return false;
  }
  return true;
}

bool parse_json_body(const httplib::Request& req, json* body, Error* error) {
  return parse_json_object(req.body, body, error);
}

std::string sse_event(const std::string& event, const json& data) {
  return "event: " + event +
         "\ndata: " + data.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
}

std::string sse_data(const std::string& data) {
  return "data: " + data + "\n\n";
}

std::string text_member(const json& object, const char* key, const std::string& fallback) {
  if (!object.is_object()) return fallback;
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  return it->is_string() ? it->get<std::string>() : json_excerpt(*it);
}

std::string json_excerpt(const json& value) {
  if (value.is_array()) return "[...]";
  if (value.is_object()) return "{...}";
  return quote_excerpt(value.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::string base64(const std::string& in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(in[i])) << 16;
    if (i + 1 < in.size()) v |= uint32_t(uint8_t(in[i + 1])) << 8;
    if (i + 2 < in.size()) v |= uint8_t(in[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

static std::string type_name(const json& value) {
  if (value.is_string()) return "a string";
  if (value.is_number()) return "a number";
  if (value.is_boolean()) return "a boolean";
  if (value.is_array()) return "an array";
  if (value.is_object()) return "an object";
  return "null";
}

void ParamReader::fail(const std::string& message, const std::string& param) {
  if (error.ok()) error = request_error(message, param);
}

std::optional<std::string> ParamReader::string(const char* key, bool required) {
  if (!has(key)) {
    if (required) fail(std::string("missing required parameter '") + key + "'", key);
    return std::nullopt;
  }
  const json& value = body_.at(key);
  if (!value.is_string()) {
    fail(std::string("'") + key + "' must be a string, got " + type_name(value), key);
    return std::nullopt;
  }
  return value.get<std::string>();
}

std::optional<double> ParamReader::number(const char* key, double lo, double hi) {
  if (!has(key)) return std::nullopt;
  const json& value = body_.at(key);
  if (!value.is_number()) {
    fail(std::string("'") + key + "' must be a number, got " + type_name(value), key);
    return std::nullopt;
  }
  const double v = value.get<double>();
  if (v < lo || v > hi) {
    fail(std::string("'") + key + "' must be between " + json(lo).dump() + " and " +
             json(hi).dump() + ", got " + value.dump(),
         key);
    return std::nullopt;
  }
  return v;
}

std::optional<int64_t> ParamReader::integer(const char* key, int64_t lo, int64_t hi) {
  if (!has(key)) return std::nullopt;
  const json& value = body_.at(key);
  if (!value.is_number_integer()) {
    fail(std::string("'") + key + "' must be an integer, got " + type_name(value), key);
    return std::nullopt;
  }
  // Past INT64_MAX is past every range (it used to be read as INT64_MAX, within some).
  const bool too_large = value.is_number_unsigned() && value.get<uint64_t>() > INT64_MAX;
  const int64_t v = too_large ? 0 : value.get<int64_t>();
  if (too_large || v < lo || v > hi) {
    fail(std::string("'") + key + "' must be between " + std::to_string(lo) + " and " +
             std::to_string(hi) + ", got " + value.dump(),
         key);
    return std::nullopt;
  }
  return v;
}

std::optional<bool> ParamReader::boolean(const char* key) {
  if (!has(key)) return std::nullopt;
  const json& value = body_.at(key);
  if (!value.is_boolean()) {
    fail(std::string("'") + key + "' must be a boolean, got " + type_name(value), key);
    return std::nullopt;
  }
  return value.get<bool>();
}

// What the access log says about a finished generation.
// Adds a finished generation to the access record (several choices of one request add up).
static void record_generation(const TextStream& stream, const TextEvent& done, bool first) {
  AccessRecord& record = current_access();
  record.model = stream.model();
  if (first) {
    record.input_tokens = record.cached_tokens = record.output_tokens = 0;
    record.time_to_first_token = done.time_to_first_token;
  }
  record.input_tokens += done.usage.prompt_tokens;
  record.cached_tokens += done.usage.cached_tokens;
  record.output_tokens += done.usage.completion_tokens;
  if (done.finish == FinishReason::ERROR || done.finish == FinishReason::CANCELLED) {
    record_error(done.error);
  }
}

bool drain_text_streams(const std::vector<TextStream*>& streams,
                        const std::function<bool()>& client_gone,
                        const std::function<bool(size_t, TextEvent&)>& on_event) {
  TextEvent event;
  for (size_t i = 0; i < streams.size();) {
    TextStream& stream = *streams[i];
    if (!stream.next(&event, std::chrono::milliseconds(50))) {
      if (client_gone()) {
        for (TextStream* s : streams) s->cancel();
        record_error(make_error(ErrorCode::CANCELLED, "the client disconnected"));
        end_streamed_access();
        return false;
      }
      continue;
    }
    if (event.done) record_generation(stream, event, i == 0);
    if (!on_event(i, event)) {
      for (TextStream* s : streams) s->cancel();
      end_streamed_access();
      return false;
    }
    if (event.done) ++i;
  }
  end_streamed_access();
  return true;
}

bool drain_text_stream(TextStream& stream, const std::function<bool()>& client_gone,
                       const std::function<bool(TextEvent&)>& on_event) {
  return drain_text_streams({&stream}, client_gone,
                            [&](size_t, TextEvent& event) { return on_event(event); });
}

json devices_json(const std::vector<DeviceLayers>& devices) {
  json out = json::array();
  for (const DeviceLayers& d : devices) out.push_back({{"name", d.device}, {"layers", d.layers}});
  return out;
}

}  // namespace allm
