#include "core/free_memory.h"

#include <fstream>
#include <sstream>

#include "base/rpc_workers.h"
#include "ggml-backend.h"

namespace allm {

std::optional<uint64_t> available_memory_bytes(const std::string& meminfo) {
  std::ifstream in(meminfo);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("MemAvailable:", 0) != 0) continue;
    std::istringstream fields(line.substr(13));
    uint64_t kib = 0;
    if (fields >> kib) return kib * 1024;
  }
  return std::nullopt;
}

std::optional<uint64_t> MachineMemory::ram() {
  return available_memory_bytes();
}

std::vector<GpuMemory> MachineMemory::gpus() {
  std::vector<GpuMemory> discrete, integrated;
  for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
    ggml_backend_dev_t device = ggml_backend_dev_get(i);
    const enum ggml_backend_dev_type type = ggml_backend_dev_type(device);
    if (type != GGML_BACKEND_DEVICE_TYPE_GPU && type != GGML_BACKEND_DEVICE_TYPE_IGPU) continue;
    if (!device_answers(device)) continue;  // its load fails on the worker check, naming it
    size_t free = 0, total = 0;
    ggml_backend_dev_memory(device, &free, &total);
    GpuMemory gpu{ggml_backend_dev_description(device), free, total};
    (type == GGML_BACKEND_DEVICE_TYPE_GPU ? discrete : integrated).push_back(std::move(gpu));
  }
  return discrete.empty() ? integrated : discrete;
}

}  // namespace allm
