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

}  // namespace stcpp
