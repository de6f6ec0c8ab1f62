// HTTP to a running allm server for the client commands: JSON requests and streamed answers,
// with failures turned into a message and an exit status.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "api/http_util.h"
#include "cli/client_options.h"

namespace allm {

struct ClientFailure {
  int exit_status = 0;  // kExitUnreachable when nothing answers, else kExitFailure
  std::string message;
};

class ServerClient {
 public:
  explicit ServerClient(ServerAddress address);
  ~ServerClient();

  // Whether a server answers GET /health there.
  bool reachable();
  // GET `path`: the JSON body of a 200, else false with *failure set.
  bool get_json(const std::string& path, json* body, ClientFailure* failure);
  // POST `body` to `path` and hand each piece of a 200's body to `on_data` as it arrives (false
  // from it stops reading). False with *failure set when the request fails or is answered with an
  // error; true when stopped by on_data or by stop().
  bool post_streaming(const std::string& path, const json& body,
                      const std::function<bool(std::string_view)>& on_data, ClientFailure* failure);
  // From another thread: ends the request in flight (its connection is shut down).
  void stop();
  const ServerAddress& address() const { return address_; }

 private:
  ClientFailure failure_for(int status, const std::string& body) const;
  ClientFailure connection_failure(const std::string& what) const;

  ServerAddress address_;
  std::unique_ptr<httplib::Client> http_;
};

}  // namespace allm
