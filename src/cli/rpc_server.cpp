// allm rpc-server: this machine's devices served over ggml's RPC protocol to `allm serve --rpc`
// (or llama.cpp's --rpc) on another machine, which then places model layers on them.
#include <cstdio>
#include <string>
#include <vector>

#include "base/log.h"
#include "cli/client_options.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "core/cpu_threads.h"
#include "ggml-backend.h"
#include "ggml-rpc.h"
#include "safetensors/device.h"

namespace allm {

namespace {

// The devices to serve: those named, else every GPU, else the CPU.
bool serving_devices(const std::string& names, std::vector<ggml_backend_dev_t>* devices,
                     std::string* problem) {
  if (names != "none") {
    const stcpp::Failure failure = stcpp::find_gpus(names, devices);
    if (failure) {
      *problem = failure.message;
      return false;
    }
  }
  if (devices->empty()) devices->push_back(ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU));
  return true;
}

bool is_loopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1";
}

}  // namespace

int run_rpc_server(int argc, char** argv) {
  RpcServerOptions options;
  if (std::optional<int> done = parse_command_line(
          "rpc-server", argc, argv, parse_rpc_server_options, rpc_server_help, &options)) {
    return *done;
  }
  std::vector<ggml_backend_dev_t> devices;
  std::string problem;
  if (!serving_devices(options.device, &devices, &problem)) {
    std::fprintf(stderr, "allm rpc-server: %s\n", problem.c_str());
    return kExitUsage;
  }
  const int threads = options.threads > 0 ? options.threads : count_cpus().physical;
  std::string names;
  for (ggml_backend_dev_t device : devices) {
    if (!names.empty()) names += ",";
    names += ggml_backend_dev_name(device);
  }
  const std::string endpoint = options.host + ":" + std::to_string(options.port);
  if (!is_loopback(options.host)) {
    ALLM_LOG_WARN(
        "RPC has no authentication or encryption: anyone who reaches %s can use these "
        "devices and read what they compute; keep it on a private network",
        endpoint.c_str());
  }
  ALLM_LOG_INFO("RPC worker on %s serving %s (%d CPU threads)", endpoint.c_str(), names.c_str(),
                threads);
  ggml_backend_rpc_start_server(endpoint.c_str(), nullptr, threads, devices.size(), devices.data());
  ALLM_LOG_ERROR("the RPC worker stopped: cannot listen on %s", endpoint.c_str());
  return kExitFailure;
}

}  // namespace allm
