// One structured access-log line and the HTTP metrics per request. The record lives in a
// thread_local: httplib runs a request's handler, its streaming content provider and the logger
// on one worker thread, so the handler's parts can add what they learn (model, tokens) without
// threading it through every call.
#pragma once

#include <chrono>
#include <string>

#include "base/error.h"
#include "httplib.h"

namespace allm {

struct AccessRecord {
  std::string id;                                 // also sent as the X-Request-Id response header
  std::chrono::steady_clock::time_point started;  // accepted (see note_connection_accepted)
  std::string model;
  std::string end_user;   // the request's `user` or `safety_identifier`
  int input_tokens = -1;  // -1: not a generation
  int output_tokens = -1;
  int cached_tokens = -1;
  double time_to_first_token = -1;
  std::string error_code;  // the spec or OpenAI code of a failure, also one inside a stream
  // A streamed response: httplib logs before the body is written, so the line waits for the
  // stream's end (end_streamed_access).
  bool streaming = false;
  std::string method, path;
  int status = 0;
};

// When the connection this thread now serves was accepted; its first request's clock starts
// there (later requests on a kept-alive connection start when their headers are read).
void note_connection_accepted(std::chrono::steady_clock::time_point accepted);

// The record of the request this thread is serving.
AccessRecord& current_access();
void begin_access(const httplib::Request& req, httplib::Response& res);
// Counts an error (allm_errors_total) and remembers its code for the log line.
void record_error(const Error& error);
// Logs the line and updates the request metrics; called by httplib's logger. For a streamed
// (text/event-stream) response it only takes note, and end_streamed_access logs at its end.
void finish_access(const httplib::Request& req, const httplib::Response& res);
void end_streamed_access();

// The metric label for a path: the route pattern, so ids do not make new series.
std::string endpoint_label(const std::string& method, const std::string& path);
// The access-log line (logfmt: key=value, values with spaces or quotes quoted).
std::string format_access_line(const AccessRecord& record, const std::string& method,
                               const std::string& path, int status, double duration_seconds);

}  // namespace allm
