// Shared pieces of the HTTP layer: JSON bodies, OpenAI error bodies, SSE framing, timestamps.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace allm {

using json = nlohmann::ordered_json;
class TextStream;
struct TextEvent;
struct DeviceLayers;

// Seconds a 429 (a full queue) or a 503 (the response store unreachable) asks the client to
// wait before retrying.
constexpr int kRetryAfterSeconds = 1;

// HTTP status for an error: request problems by their OpenAI code, engine failures by spec code.
int http_status(const Error& error);
json error_body(const Error& error);
void send_error(httplib::Response& res, const Error& error);
// Anthropic's shape for the Messages API: {"type": "error", "error": {"type", "message"}}, the
// type from the HTTP status (invalid_request_error, authentication_error, not_found_error,
// rate_limit_error, api_error, ...); the message starts with the offending field.
json anthropic_error_body(const Error& error);
void send_anthropic_error(httplib::Response& res, const Error& error);
void send_json(httplib::Response& res, const json& body, int status = 200);
// A loaded text model's placement: [{"name": "RPC0", "layers": 2}, ...].
json devices_json(const std::vector<DeviceLayers>& devices);

// Deepest nesting of arrays and objects a request body may have. Client JSON is walked and
// printed by recursive code (nlohmann's dump, our readers), so the depth bounds the stack.
constexpr int kMaxJsonDepth = 64;

// Whether `text` nests arrays/objects deeper than `limit`: one pass over the bytes, counting
// brackets outside strings (no recursion; malformed text is left to the parser).
bool json_nesting_exceeds(const std::string& text, int limit);

// Parses `text` as a JSON object no deeper than kMaxJsonDepth; a 400 error when it is not one.
bool parse_json_object(const std::string& text, json* body, Error* error);
// The same for the request body.
bool parse_json_body(const httplib::Request& req, json* body, Error* error);

std::string sse_event(const std::string& event, const json& data);  // event: + data: lines
std::string sse_data(const std::string& data);                      // a data: line only

int64_t unix_time();

// Standard base64 (RFC 4648, with padding), for binary data in JSON (b64_json, base64 embeddings).
std::string base64(const std::string& bytes);

// `object[key]` when it is a string; `fallback` when `object` is not an object or the key is
// absent or null; any other value as a short excerpt (json_excerpt), so that an error message
// can quote it (json::value() would throw on a type mismatch, and a throw is a 500).
std::string text_member(const json& object, const char* key, const std::string& fallback);

// What an error message may quote of a client's value: a scalar's JSON text, `[...]` or `{...}`
// for a container (never walked), cut by quote_excerpt (base/error.h).
std::string json_excerpt(const json& value);

// Reads a request's parameters, checking type and range; keeps the first problem in `error`.
class ParamReader {
 public:
  explicit ParamReader(const json& body) : body_(body) {}
  std::optional<std::string> string(const char* key, bool required = false);
  std::optional<double> number(const char* key, double lo, double hi);
  std::optional<int64_t> integer(const char* key, int64_t lo, int64_t hi);
  std::optional<bool> boolean(const char* key);
  void fail(const std::string& message, const std::string& param);
  bool has(const char* key) const { return body_.contains(key) && !body_.at(key).is_null(); }

  Error error;

 private:
  const json& body_;
};

// Feeds the events of `stream` to `on_event` until the done event. When the client goes away
// (checked while waiting) or `on_event` returns false (a write failed), the request is
// cancelled and false is returned.
bool drain_text_stream(TextStream& stream, const std::function<bool()>& client_gone,
                       const std::function<bool(TextEvent&)>& on_event);
// The same for the streams of several choices, one after the other (all of them run meanwhile);
// `on_event` gets the stream's index. The access record sums their token counts.
bool drain_text_streams(const std::vector<TextStream*>& streams,
                        const std::function<bool()>& client_gone,
                        const std::function<bool(size_t, TextEvent&)>& on_event);

}  // namespace allm
