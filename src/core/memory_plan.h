// Whether one more model fits, and what to unload so that it does: the --max-memory budgets for
// RAM and GPU memory, what is free on the machine, and the loaded models of every modality
// (idle ones are unloaded least recently used first). Pure logic over a snapshot that the model
// lifecycle takes; tests feed it any machine.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/memory_estimate.h"
#include "core/free_memory.h"

namespace allm {

// Bytes of RAM and of GPU memory.
struct MemoryCharge {
  uint64_t ram = 0;
  uint64_t vram = 0;
  uint64_t total() const { return ram + vram; }
  MemoryCharge& operator+=(const MemoryCharge& other);
  MemoryCharge& operator-=(const MemoryCharge& other);  // saturating at 0
};

// --max-memory: "16G" (RAM alone, as before), "ram=16G,vram=8G", "vram=8G". 0: no budget.
struct MemoryLimits {
  uint64_t ram = 0;
  uint64_t vram = 0;
};
bool parse_memory_limits(const std::string& text, MemoryLimits* limits, std::string* problem);

// Where an estimate lands: wholly in GPU memory when its engine uses a GPU and ggml has one,
// else in RAM. `at_least` (what the engine reported after loading) raises it.
MemoryCharge place_estimate(const MemoryEstimate& estimate, bool has_gpu, uint64_t at_least = 0);

// The GPU memory the engine can use: the sum over GPUs (llama.cpp splits layers), the first
// GPU's (whisper.cpp); nullopt when it uses none or there is none.
std::optional<uint64_t> usable_vram(GpuUse use, const std::vector<GpuMemory>& gpus);

// A loaded model as the plan sees it.
struct ResidentModel {
  std::string id;
  MemoryCharge charge;
  bool idle = false;      // no request running or waiting on it: it may be unloaded
  int64_t last_used = 0;  // any monotonic clock
};

struct RoomRequest {
  std::string model_id;
  MemoryCharge need;
  std::string breakdown;  // MemoryEstimate::breakdown(), for the messages
};

struct MemoryNow {
  MemoryLimits limits;
  MemoryCharge reserved;         // for loads in progress
  std::optional<uint64_t> ram;   // free RAM; nullopt: unknown
  std::optional<uint64_t> vram;  // free GPU memory the engine can use; nullopt: no GPU
};

struct RoomPlan {
  Error error;                // OOM_RAM or OOM_VRAM when the model cannot fit
  std::vector<size_t> evict;  // indices into the residents, least recently used first
};

RoomPlan plan_room(const RoomRequest& request, const std::vector<ResidentModel>& residents,
                   const MemoryNow& now);

}  // namespace allm
