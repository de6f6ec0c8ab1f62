// The GPU an engine runs on, among the devices ggml finds (CUDA, Vulkan, Metal, ROCm, RPC).
#pragma once

#include <string>
#include <vector>

#include "ggml-backend.h"
#include "safetensors/failure.h"

namespace stcpp {

// The GPUs ggml finds, comma-separated by name ("" when none).
std::string gpu_names();

// The GPUs named in `names` (comma-separated; "": every GPU ggml reports, none when there is
// none); a name that is not a GPU here is an UNSUPPORTED failure naming the ones there are.
Failure find_gpus(const std::string& names, std::vector<ggml_backend_dev_t>* devices);

}  // namespace stcpp
