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

// A worker serves one client at a time: while this process holds a connection to it, a probe
// would only wait in its queue, so the connection held is what says it answers.
bool worker_answers(const std::string& endpoint) {
  return ggml_backend_rpc_connected(endpoint.c_str()) || rpc_worker_reachable(endpoint);
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

namespace {

bool is_rpc(ggml_backend_dev_t device) {
  return ggml_backend_dev_backend_reg(device) == ggml_backend_rpc_reg();
}

// An RPC device's description is its worker's endpoint.
std::string endpoint_of(ggml_backend_dev_t device) {
  return ggml_backend_dev_description(device);
}

}  // namespace

bool device_answers(ggml_backend_dev_t device) {
  return !is_rpc(device) || worker_answers(endpoint_of(device));
}

Error check_rpc_workers() {
  std::lock_guard<std::mutex> lock(registered_mutex);
  for (const std::string& endpoint : registered()) {
    if (!worker_answers(endpoint)) return unreachable(endpoint);
  }
  return {};
}

RpcPlacement watch_rpc_workers() {
  std::vector<std::string> devices;
  for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
    if (is_rpc(ggml_backend_dev_get(i)))
      devices.push_back(ggml_backend_dev_name(ggml_backend_dev_get(i)));
  }
  return RpcPlacement(devices);
}

RpcPlacement::RpcPlacement(const std::vector<std::string>& device_names) {
  for (const std::string& name : device_names) {
    ggml_backend_dev_t device = ggml_backend_dev_by_name(name.c_str());
    if (!device || !is_rpc(device)) continue;
    const std::string endpoint = endpoint_of(device);
    const bool seen = std::any_of(workers_.begin(), workers_.end(),
                                  [&](const auto& worker) { return worker.first == endpoint; });
    if (!seen)
      workers_.emplace_back(endpoint, ggml_backend_rpc_connection_losses(endpoint.c_str()));
  }
}

std::string RpcPlacement::lost_worker() const {
  for (const auto& [endpoint, losses] : workers_) {
    if (ggml_backend_rpc_connection_losses(endpoint.c_str()) != losses) return endpoint;
  }
  return "";
}

Error RpcPlacement::check() const {
  const std::string lost = lost_worker();
  if (lost.empty()) return {};
  return make_error(ErrorCode::INTERNAL, "the RPC worker " + lost +
                                             " was lost during the request (its part of the "
                                             "model is gone; the model is loaded again on the "
                                             "next request)");
}

}  // namespace allm
