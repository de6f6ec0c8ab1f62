// ggml RPC workers (`allm rpc-server`, or llama.cpp's rpc-server): machines whose devices join
// this process's ggml device list as RPC0, RPC1, ..., where both text engines and the image engine
// place layers and weights as on local GPUs. ggml-rpc ends the process when a worker it uses does
// not answer, so a worker is checked with a plain connection before anything is sent to it.
#pragma once

#include <string>
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

}  // namespace allm
