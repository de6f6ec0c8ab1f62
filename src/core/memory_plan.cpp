#include "core/memory_plan.h"

#include <algorithm>

#include "base/byte_size.h"

namespace allm {

MemoryCharge& MemoryCharge::operator+=(const MemoryCharge& other) {
  ram += other.ram;
  vram += other.vram;
  return *this;
}

MemoryCharge& MemoryCharge::operator-=(const MemoryCharge& other) {
  ram -= std::min(ram, other.ram);
  vram -= std::min(vram, other.vram);
  return *this;
}

bool parse_memory_limits(const std::string& text, MemoryLimits* limits, std::string* problem) {
  MemoryLimits out;
  bool ok = !text.empty();
  const bool one_item = text.find(',') == std::string::npos;
  for (size_t start = 0; ok && start <= text.size();) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    const size_t eq = item.find('=');
    // A bare size is the RAM budget, and then the only item.
    const std::string key = eq == std::string::npos && one_item ? "ram" : item.substr(0, eq);
    uint64_t* slot = key == "ram" ? &out.ram : key == "vram" ? &out.vram : nullptr;
    ok = slot && parse_byte_size(eq == std::string::npos ? item : item.substr(eq + 1), slot);
    start = comma + 1;
  }
  if (!ok) {
    *problem = "expected a size such as 16G (RAM), or ram=16G,vram=8G; got '" + text + "'";
    return false;
  }
  *limits = out;
  return true;
}

MemoryCharge place_estimate(const MemoryEstimate& estimate, bool has_gpu, uint64_t at_least) {
  const uint64_t bytes = std::max(estimate.total(), at_least);
  if (has_gpu && estimate.gpu != GpuUse::NONE) return {0, bytes};
  return {bytes, 0};
}

std::optional<uint64_t> usable_vram(GpuUse use, const std::vector<GpuMemory>& gpus) {
  if (use == GpuUse::NONE || gpus.empty()) return std::nullopt;
  if (use == GpuUse::FIRST_GPU) return gpus.front().free;
  uint64_t free = 0;
  for (const GpuMemory& gpu : gpus) free += gpu.free;
  return free;
}

namespace {

// One side of the plan: RAM or GPU memory.
struct Side {
  bool vram;
  uint64_t MemoryCharge::*bytes;
  uint64_t MemoryLimits::*limit;
  ErrorCode code;
  const char* what;         // " of GPU memory" or ""
  const char* budget_name;  // in messages
  const char* flag;
};

const Side kSides[] = {
    {false, &MemoryCharge::ram, &MemoryLimits::ram, ErrorCode::OOM_RAM, "", "memory budget",
     "--max-memory"},
    {true, &MemoryCharge::vram, &MemoryLimits::vram, ErrorCode::OOM_VRAM, " of GPU memory",
     "GPU memory budget", "--max-memory vram="},
};

}  // namespace

RoomPlan plan_room(const RoomRequest& request, const std::vector<ResidentModel>& residents,
                   const MemoryNow& now) {
  RoomPlan plan;
  MemoryCharge charged, freed;
  for (const ResidentModel& r : residents) charged += r.charge;
  std::vector<size_t> lru;
  for (size_t i = 0; i < residents.size(); ++i) {
    if (residents[i].idle) lru.push_back(i);
  }
  std::stable_sort(lru.begin(), lru.end(), [&](size_t a, size_t b) {
    return residents[a].last_used < residents[b].last_used;
  });
  // Unloads the least recently used idle model that holds memory on this side.
  auto evict_one = [&](const Side& side) {
    for (size_t& i : lru) {
      if (i == SIZE_MAX || residents[i].charge.*side.bytes == 0) continue;
      freed += residents[i].charge;
      plan.evict.push_back(i);
      i = SIZE_MAX;
      return true;
    }
    return false;
  };
  auto refuse = [&](const Side& side, const std::string& why) {
    plan.evict.clear();
    plan.error = make_error(side.code, "model '" + request.model_id + "' needs about " +
                                           format_bytes(request.need.*side.bytes) + side.what +
                                           " (" + request.breakdown + ")" + why);
    return plan;
  };
  for (const Side& side : kSides) {
    const uint64_t limit = now.limits.*side.limit;
    const uint64_t need = request.need.*side.bytes;
    if (!limit || !need) continue;
    if (need > limit) {
      return refuse(side, ", more than the " + std::string(side.budget_name) + " of " +
                              format_bytes(limit) + " (" + side.flag + ")");
    }
    while (charged.*side.bytes - freed.*side.bytes + now.reserved.*side.bytes + need > limit) {
      if (!evict_one(side)) {
        return refuse(side, " but the " + std::string(side.budget_name) + " (" +
                                format_bytes(limit) + ", " + side.flag +
                                ") is held by models that are busy; retry later");
      }
    }
  }
  for (const Side& side : kSides) {
    const std::optional<uint64_t> free = side.vram ? now.vram : now.ram;
    const uint64_t need = request.need.*side.bytes;
    if (!free || !need) continue;
    while (*free + freed.*side.bytes < now.reserved.*side.bytes + need) {
      if (!evict_one(side)) {
        return refuse(side, " but only " + format_bytes(*free) +
                                (side.vram ? " is free on the GPU" : " of RAM is available"));
      }
    }
  }
  return plan;
}

}  // namespace allm
