// ggml RPC workers (`allm rpc-server`, or llama.cpp's rpc-server): machines whose devices join
// this process's ggml device list as RPC0, RPC1, ..., where both text engines and the image engine
// place layers and weights as on local GPUs. A worker is checked with a plain connection before a
// model is placed on it. A connection lost later does not end the process (our patch to ggml-rpc,
// scripts/patches/): its commands are skipped, and RpcPlacement tells that a model lost a worker.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "ggml-backend.h"

namespace allm {

// "HOST:PORT[,HOST:PORT...]" into its endpoints; false with *problem naming a bad one.
bool parse_rpc_endpoints(const std::string& list, std::vector<std::string>* endpoints,
                         std::string* problem);

// Whether HOST:PORT accepts a TCP connection within `timeout_ms`.
bool rpc_worker_reachable(const std::string& endpoint, int timeout_ms = 2000);

// Registers each worker's devices with ggml; an error (LOAD_FAILED) names the first worker that
// does not answer. The names of the devices registered go to *devices.
Error register_rpc_workers(const std::vector<std::string>& endpoints,
                           std::vector<std::string>* devices);

// False for an RPC device whose worker does not answer (asking ggml-rpc about it would end the
// process); true for every other device.
bool device_answers(ggml_backend_dev_t device);

// Before a model is placed on devices: every registered worker still answers, else LOAD_FAILED
// naming the one that does not.
Error check_rpc_workers();

// The RPC workers among a model's devices, with how many connections to each had failed when the
// model was placed: a count grown since means the worker went away with the model's weights (and
// the computes since gave nothing), so the model must be loaded again.
class RpcPlacement {
 public:
  RpcPlacement() = default;
  // The workers among the devices of these names (ggml's: "RPC0", ...).
  explicit RpcPlacement(const std::vector<std::string>& device_names);
  // The endpoint (HOST:PORT) of a worker lost since the model was placed, or "".
  std::string lost_worker() const;
  // INTERNAL naming the lost worker, or no error.
  Error check() const;

 private:
  std::vector<std::pair<std::string, uint64_t>> workers_;  // endpoint, connections lost then
};

// Every registered worker: taken before a load, it tells which worker a failed load lost.
RpcPlacement watch_rpc_workers();

}  // namespace allm
