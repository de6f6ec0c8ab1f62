// The HTTP server: routes, limits, error bodies for failures outside any route.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "api/auth.h"
#include "api/routes.h"

namespace allm {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string public_url;  // the base URL clients reach the server at; empty: http://host:port
  size_t max_body_bytes = 32u << 20;
  // Connections served at once: httplib gives each open connection a thread, started on demand
  // up to this many (0: connection_limit_for() decides at start-up).
  int max_connections = 0;
  std::vector<std::string> api_keys;      // when set, /v1/* and /metrics need one (Bearer)
  std::vector<std::string> cors_origins;  // origins allowed to call from a browser ("*": any)
};

// Enough connections for every request the managers may hold (running or queued, so that the
// one past a queue gets its 429 from the manager at once), plus room for /health, /metrics and
// idle keep-alive connections: `queued_capacity` + 64, at least 256.
int connection_limit_for(int queued_capacity);

class ApiServer {
 public:
  ApiServer(ApiContext ctx, ServerConfig config);
  ~ApiServer();
  // Binds and serves until stop(); false when the address cannot be bound.
  bool run() { return bind() && listen(); }
  // The two halves of run(): bind() takes the address (port 0: a free port, which port() then
  // tells), listen() serves until stop().
  bool bind();
  bool listen();
  int port() const { return config_.port; }
  void stop();

 private:
  // Request id, CORS, preflight and the API key check, before any route runs.
  httplib::Server::HandlerResponse before_routing(const httplib::Request& req,
                                                  httplib::Response& res) const;

  ApiContext ctx_;
  ServerConfig config_;
  // Where clients reach the server, for image urls; bind() completes it when the port was 0.
  std::string public_url_;
  // config_.api_keys as the request checks compare them.
  std::vector<KeyDigest> api_key_digests_;
  std::unique_ptr<httplib::Server> server_;
};

}  // namespace allm
