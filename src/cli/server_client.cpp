#include "cli/server_client.h"

#include "cli/commands.h"

namespace allm {

namespace {

// A model load can come before the first token of an answer; Ctrl-C ends a wait sooner.
constexpr int kStreamReadTimeoutSeconds = 3600;
constexpr int kRequestReadTimeoutSeconds = 60;

}  // namespace

ServerClient::ServerClient(ServerAddress address)
    : address_(std::move(address)),
      http_(std::make_unique<httplib::Client>(address_.host, address_.port)) {
  http_->set_connection_timeout(5);
  if (!address_.api_key.empty()) http_->set_bearer_token_auth(address_.api_key);
}

ServerClient::~ServerClient() = default;

bool ServerClient::reachable() {
  http_->set_read_timeout(5);
  const httplib::Result result = http_->Get("/health");
  return result && result->status == 200;
}

ClientFailure ServerClient::connection_failure(const std::string& what) const {
  return {kExitUnreachable, "no server answers at " + address_.url() + " (" + what +
                                "): start one with 'allm serve', or give its address with "
                                "--host/--port (ALLM_HOST/ALLM_PORT)"};
}

ClientFailure ServerClient::failure_for(int status, const std::string& body) const {
  if (status == 401) {
    return {kExitFailure, "the server at " + address_.url() + " refused the API key: " +
                              (address_.api_key.empty() ? "it needs one, pass --api-key KEY or set "
                                                          "ALLM_API_KEY"
                                                        : "it is not one of its --api-key keys")};
  }
  std::string message = "HTTP " + std::to_string(status);
  const json error = json::parse(body, nullptr, false);
  if (error.is_object() && error.contains("error") && error["error"].is_object())
    message += ": " + text_member(error["error"], "message", "");
  return {kExitFailure, "the server answered " + message};
}

bool ServerClient::get_json(const std::string& path, json* body, ClientFailure* failure) {
  http_->set_read_timeout(kRequestReadTimeoutSeconds);
  const httplib::Result result = http_->Get(path);
  if (!result) {
    *failure = connection_failure(httplib::to_string(result.error()));
    return false;
  }
  if (result->status != 200) {
    *failure = failure_for(result->status, result->body);
    return false;
  }
  *body = json::parse(result->body, nullptr, false);
  if (body->is_discarded()) {
    *failure = {kExitFailure, "the server's answer to GET " + path + " is not JSON"};
    return false;
  }
  return true;
}

bool ServerClient::post_streaming(const std::string& path, const json& body,
                                  const std::function<bool(std::string_view)>& on_data,
                                  ClientFailure* failure) {
  http_->set_read_timeout(kStreamReadTimeoutSeconds);
  int status = 0;
  std::string error_body;  // the body of an answer other than 200
  bool stopped = false;
  httplib::Request request;
  request.method = "POST";
  request.path = path;
  request.body = body.dump();
  request.set_header("Content-Type", "application/json");
  request.set_header("Accept", "text/event-stream");
  request.response_handler = [&status](const httplib::Response& response) {
    status = response.status;
    return true;
  };
  request.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    if (status != 200) {
      error_body.append(data, size);
      return true;
    }
    stopped = !on_data(std::string_view(data, size));
    return !stopped;
  };
  const httplib::Result result = http_->send(request);
  if (stopped) return true;
  if (!result && status == 0) {
    *failure = connection_failure(httplib::to_string(result.error()));
    return false;
  }
  if (status != 200) {
    *failure = failure_for(status, error_body);
    return false;
  }
  if (!result) {
    *failure = {kExitFailure, "the answer broke off: " + httplib::to_string(result.error())};
    return false;
  }
  return true;
}

void ServerClient::stop() {
  http_->stop();
}

}  // namespace allm
