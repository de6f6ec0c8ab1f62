#include "safetensors/device.h"

#include <algorithm>

namespace stcpp {

namespace {

bool is_gpu(ggml_backend_dev_t device) {
  const enum ggml_backend_dev_type type = ggml_backend_dev_type(device);
  return type == GGML_BACKEND_DEVICE_TYPE_GPU || type == GGML_BACKEND_DEVICE_TYPE_IGPU;
}

}  // namespace

std::string gpu_names() {
  std::string names;
  for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
    ggml_backend_dev_t device = ggml_backend_dev_get(i);
    if (is_gpu(device)) {
      names += (names.empty() ? "" : ",") + std::string(ggml_backend_dev_name(device));
    }
  }
  return names;
}

Failure find_gpus(const std::string& names, std::vector<ggml_backend_dev_t>* devices) {
  devices->clear();
  if (names.empty()) {
    for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
      if (is_gpu(ggml_backend_dev_get(i))) devices->push_back(ggml_backend_dev_get(i));
    }
    return {};
  }
  size_t start = 0;
  while (start <= names.size()) {
    const size_t end = std::min(names.find(',', start), names.size());
    const std::string name = names.substr(start, end - start);
    ggml_backend_dev_t device = ggml_backend_dev_by_name(name.c_str());
    if (!device || !is_gpu(device)) {
      const std::string gpus = gpu_names();
      devices->clear();
      return fail(STCPP_UNSUPPORTED, "no GPU device '" + name + "'; this build finds " +
                                         (gpus.empty() ? "none" : gpus));
    }
    devices->push_back(device);
    start = end + 1;
  }
  return {};
}

std::vector<int> split_layers(int n_layer, int n_gpu_layers, const std::vector<double>& shares) {
  std::vector<int> layer_device(std::max(n_layer, 0), -1);
  if (shares.empty() || n_gpu_layers == 0) return layer_device;
  double total = 0;
  for (double share : shares) total += share;
  std::vector<double> ends;  // cumulative fractions
  for (double share : shares) {
    const double fraction = total > 0 ? share / total : 1.0 / shares.size();
    ends.push_back((ends.empty() ? 0 : ends.back()) + fraction);
  }
  const bool all = n_gpu_layers < 0 || n_gpu_layers > n_layer;
  const int first = all ? 0 : n_layer - n_gpu_layers;
  for (int l = first; l < n_layer; ++l) {
    const double at = static_cast<double>(l - first) / (n_layer - first);
    int d = 0;
    while (d + 1 < static_cast<int>(ends.size()) && at >= ends[d]) ++d;
    layer_device[l] = d;
  }
  return layer_device;
}

}  // namespace stcpp
