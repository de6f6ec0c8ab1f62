// What memory is free right now: RAM (MemAvailable) and each GPU's memory as ggml's devices
// report it. The model lifecycle reads it through this interface so that tests can stand in a
// machine of any size (a fake GPU with N bytes free); the server uses MachineMemory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace allm {

// MemAvailable from /proc/meminfo (or another file in its format), in bytes.
std::optional<uint64_t> available_memory_bytes(const std::string& meminfo = "/proc/meminfo");

struct GpuMemory {
  std::string name;  // the device's description, for messages
  uint64_t free = 0;
  uint64_t total = 0;
};

class FreeMemory {
 public:
  virtual ~FreeMemory() = default;
  virtual std::optional<uint64_t> ram() = 0;  // nullopt: unknown (no check)
  virtual std::vector<GpuMemory> gpus() = 0;  // empty: no GPU backend
};

// The real machine: /proc/meminfo and ggml_backend_dev_memory() of the GPU devices that ggml was
// built with (CUDA, Metal, ROCm/HIP, Vulkan); integrated GPUs count only when there is no other.
class MachineMemory final : public FreeMemory {
 public:
  std::optional<uint64_t> ram() override;
  std::vector<GpuMemory> gpus() override;
};

}  // namespace allm
