// A machine whose free memory is not checked, for tests of models that fit anywhere.
#pragma once

#include "core/free_memory.h"

namespace allm {

class UncheckedMemory : public FreeMemory {
 public:
  std::optional<uint64_t> ram() override { return std::nullopt; }
  std::vector<GpuMemory> gpus() override { return {}; }
};

}  // namespace allm
