#include "safetensors/device.h"

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

Failure find_gpu(const std::string& name, ggml_backend_dev_t* device) {
  *device = nullptr;
  for (size_t i = 0; i < ggml_backend_dev_count() && !*device; ++i) {
    ggml_backend_dev_t candidate = ggml_backend_dev_get(i);
    if (is_gpu(candidate) && (name.empty() || name == ggml_backend_dev_name(candidate))) {
      *device = candidate;
    }
  }
  if (*device || name.empty()) return {};
  const std::string gpus = gpu_names();
  return fail(STCPP_UNSUPPORTED,
              "no GPU device '" + name + "'; this build finds " + (gpus.empty() ? "none" : gpus));
}

}  // namespace stcpp
