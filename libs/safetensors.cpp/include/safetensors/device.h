// The GPU an engine runs on, among the devices ggml finds (CUDA, Vulkan, Metal, ROCm, RPC).
#pragma once

#include <string>

#include "ggml-backend.h"
#include "safetensors/failure.h"

namespace stcpp {

// The GPUs ggml finds, comma-separated by name ("" when none).
std::string gpu_names();

// The GPU named `name` ("": the first ggml reports) into *device, null when "" and there is none;
// a name that is not a GPU here is an UNSUPPORTED failure naming the ones there are.
Failure find_gpu(const std::string& name, ggml_backend_dev_t* device);

}  // namespace stcpp
