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

// The device of each of `n_layer` decoder layers when the last `n_gpu_layers` go to devices in
// proportion to `shares` (one per device, >= 0), in order, as llama.cpp's split mode "layer"
// does: layer l of those n goes to the first device whose cumulative share exceeds l / n. -1:
// the CPU. n_gpu_layers < 0 or beyond n_layer: all. Shares summing to 0 count as equal.
std::vector<int> split_layers(int n_layer, int n_gpu_layers, const std::vector<double>& shares);

}  // namespace stcpp
