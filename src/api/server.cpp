#include "api/server.h"

#include <algorithm>

#include "api/access_log.h"
#include "api/auth.h"
#include "api/connection_pool.h"
#include "api/http_util.h"
#include "base/log.h"

namespace allm {

// Errors httplib produces before any route runs (no route, body too large, ...) get the
// OpenAI error body too.
static void fill_error_body(const httplib::Request& req, httplib::Response& res,
                            size_t max_body_bytes) {
  if (!res.body.empty()) return;
  Error error;
  switch (res.status) {
    case 404:
      error = request_error("unknown route: " + req.method + " " + req.path, "", "not_found");
      break;
    case 413:
      error = request_error("the request body exceeds the limit of " +
                                std::to_string(max_body_bytes) + " bytes (--max-body-bytes)",
                            "", "payload_too_large");
      break;
    case 405:
      error = request_error("method " + req.method + " is not allowed on " + req.path, "",
                            "method_not_allowed");
      break;
    default:
      error =
          request_error(std::string("the request failed: ") + httplib::status_message(res.status),
                        "", "invalid_request");
  }
  const int status = res.status;
  send_json(res, error_body(error), status);
}

int connection_limit_for(int queued_capacity) {
  return std::max(256, queued_capacity + 64);
}

// --public-url, else the listening address: never the client's Host header, which anyone sets.
static std::string public_base_url(const ServerConfig& config) {
  if (!config.public_url.empty()) return config.public_url;
  const bool ipv6 = config.host.find(':') != std::string::npos;
  return "http://" + (ipv6 ? "[" + config.host + "]" : config.host) + ":" +
         std::to_string(config.port);
}

ApiServer::ApiServer(ApiContext ctx, ServerConfig config)
    : ctx_(ctx), config_(std::move(config)), server_(std::make_unique<httplib::Server>()) {
  for (const std::string& key : config_.api_keys) api_key_digests_.push_back(key_digest(key));
  httplib::Server& server = *server_;
  const size_t max_connections = static_cast<size_t>(
      config_.max_connections > 0 ? config_.max_connections : connection_limit_for(0));
  server.new_task_queue = [max_connections] {
    return new ConnectionPool(max_connections, note_connection_accepted);
  };
  server.set_payload_max_length(config_.max_body_bytes);
  const size_t limit = config_.max_body_bytes;
  server.set_error_handler([limit](const httplib::Request& req, httplib::Response& res) {
    fill_error_body(req, res, limit);
    return httplib::Server::HandlerResponse::Handled;
  });
  server.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        ALLM_LOG_ERROR("%s %s failed: %s", req.method.c_str(), req.path.c_str(), what.c_str());
        send_error(res, make_error(ErrorCode::INTERNAL, "internal error: " + what));
      });
  server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    return before_routing(req, res);
  });
  server.set_logger(
      [](const httplib::Request& req, const httplib::Response& res) { finish_access(req, res); });
  register_model_routes(server, ctx_);
  register_responses_routes(server, ctx_);
  register_chat_completions_routes(server, ctx_);
  register_embeddings_routes(server, ctx_);
  register_completions_routes(server, ctx_);
  register_messages_routes(server, ctx_);
  register_audio_routes(server, ctx_);
  register_image_routes(server, ctx_, public_url_);
  register_metrics_routes(server, ctx_);
  register_admin_routes(server, ctx_);
}

httplib::Server::HandlerResponse ApiServer::before_routing(const httplib::Request& req,
                                                           httplib::Response& res) const {
  begin_access(req, res);
  if (!config_.cors_origins.empty()) {
    const std::string origin = allowed_origin(config_.cors_origins, req.get_header_value("Origin"));
    if (!origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Vary", "Origin");
      res.set_header("Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
    }
    // A preflight carries no credentials, so it is answered before the key check.
    if (req.method == "OPTIONS") {
      if (!origin.empty()) {
        res.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
        res.set_header("Access-Control-Allow-Headers",
                       req.has_header("Access-Control-Request-Headers")
                           ? req.get_header_value("Access-Control-Request-Headers")
                           : "Authorization, Content-Type, x-api-key, anthropic-version");
        res.set_header("Access-Control-Max-Age", "600");
      }
      res.status = origin.empty() ? 403 : 204;
      return httplib::Server::HandlerResponse::Handled;
    }
  }
  if (!api_key_digests_.empty() && path_requires_key(req.path) &&
      !bearer_matches(api_key_digests_, req.get_header_value("Authorization")) &&
      !key_matches(api_key_digests_, req.get_header_value("x-api-key"))) {
    const bool missing = !req.has_header("Authorization") && !req.has_header("x-api-key");
    const Error error =
        request_error(missing ? "missing API key: send it as 'Authorization: Bearer KEY' or "
                                "'x-api-key: KEY' (this server was started with --api-key)"
                              : "incorrect API key provided",
                      "", "invalid_api_key");
    // Anthropic's clients read their own error shape.
    if (req.path.rfind("/v1/messages", 0) == 0) {
      send_anthropic_error(res, error);
    } else {
      send_error(res, error);
    }
    res.set_header("WWW-Authenticate", "Bearer");
    return httplib::Server::HandlerResponse::Handled;
  }
  return httplib::Server::HandlerResponse::Unhandled;
}

ApiServer::~ApiServer() = default;

bool ApiServer::bind() {
  const bool any_port = config_.port == 0;
  const int port = any_port
                       ? server_->bind_to_any_port(config_.host)
                       : (server_->bind_to_port(config_.host, config_.port) ? config_.port : -1);
  if (port <= 0) {
    ALLM_LOG_ERROR("cannot listen on %s:%d (address in use or not available)", config_.host.c_str(),
                   config_.port);
    return false;
  }
  config_.port = port;
  public_url_ = public_base_url(config_);
  ALLM_LOG_INFO("listening on http://%s:%d", config_.host.c_str(), config_.port);
  return true;
}

bool ApiServer::listen() {
  return server_->listen_after_bind();
}

void ApiServer::stop() {
  server_->stop();
}

}  // namespace allm
