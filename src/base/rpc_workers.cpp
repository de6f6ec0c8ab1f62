#include "base/rpc_workers.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <mutex>

#include "ggml-backend.h"
#include "ggml-rpc.h"

namespace allm {

namespace {

std::mutex registered_mutex;
std::vector<std::string>& registered() {
  static std::vector<std::string> endpoints;
  return endpoints;
}

// Splits "HOST:PORT" at its last colon (IPv6 hosts come in brackets).
bool split_endpoint(const std::string& endpoint, std::string* host, std::string* port) {
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == endpoint.size()) return false;
  *host = endpoint.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  *port = endpoint.substr(colon + 1);
  char* end = nullptr;
  const long number = std::strtol(port->c_str(), &end, 10);
  return *end == '\0' && number > 0 && number < 65536;
}

// A non-blocking connect, waited for up to timeout_ms.
bool connects(const addrinfo& address, int timeout_ms) {
  const int fd = socket(address.ai_family, address.ai_socktype, address.ai_protocol);
  if (fd < 0) return false;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  bool ok = connect(fd, address.ai_addr, address.ai_addrlen) == 0;
  if (!ok && errno == EINPROGRESS) {
    pollfd waiting{fd, POLLOUT, 0};
    int error = 0;
    socklen_t length = sizeof error;
    ok = poll(&waiting, 1, timeout_ms) == 1 &&
         getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
  }
  close(fd);
  return ok;
}

Error unreachable(const std::string& endpoint) {
  return make_error(ErrorCode::LOAD_FAILED, "the RPC worker " + endpoint +
                                                " does not answer (is `allm rpc-server` running "
                                                "there, and reachable from this machine?)");
}

}  // namespace

bool parse_rpc_endpoints(const std::string& list, std::vector<std::string>* endpoints,
                         std::string* problem) {
  endpoints->clear();
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    const std::string endpoint = list.substr(start, comma - start);
    std::string host, port;
    if (!split_endpoint(endpoint, &host, &port)) {
      *problem = "expected HOST:PORT[,HOST:PORT...], got '" + quote_excerpt(endpoint) + "'";
      return false;
    }
    endpoints->push_back(endpoint);
    start = comma + 1;
  }
  return true;
}

bool rpc_worker_reachable(const std::string& endpoint, int timeout_ms) {
  std::string host, port;
  if (!split_endpoint(endpoint, &host, &port)) return false;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addresses = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &addresses) != 0) return false;
  bool ok = false;
  for (const addrinfo* a = addresses; a && !ok; a = a->ai_next) ok = connects(*a, timeout_ms);
  freeaddrinfo(addresses);
  return ok;
}

Error register_rpc_workers(const std::vector<std::string>& endpoints,
                           std::vector<std::string>* devices) {
  std::lock_guard<std::mutex> lock(registered_mutex);
  for (const std::string& endpoint : endpoints) {
    if (std::find(registered().begin(), registered().end(), endpoint) != registered().end()) {
      continue;
    }
    if (!rpc_worker_reachable(endpoint)) return unreachable(endpoint);
    ggml_backend_reg_t worker = ggml_backend_rpc_add_server(endpoint.c_str());
    if (!worker || ggml_backend_reg_dev_count(worker) == 0) {
      return make_error(ErrorCode::LOAD_FAILED,
                        "the RPC worker " + endpoint + " answered but offers no device");
    }
    ggml_backend_register(worker);
    for (size_t i = 0; i < ggml_backend_reg_dev_count(worker); ++i) {
      devices->push_back(ggml_backend_dev_name(ggml_backend_reg_dev_get(worker, i)));
    }
    registered().push_back(endpoint);
  }
  return {};
}

bool device_answers(ggml_backend_dev_t device) {
  // An RPC device's description is its worker's endpoint.
  return ggml_backend_dev_backend_reg(device) != ggml_backend_rpc_reg() ||
         rpc_worker_reachable(ggml_backend_dev_description(device));
}

Error check_rpc_workers() {
  std::lock_guard<std::mutex> lock(registered_mutex);
  for (const std::string& endpoint : registered()) {
    if (!rpc_worker_reachable(endpoint)) return unreachable(endpoint);
  }
  return {};
}

}  // namespace allm
