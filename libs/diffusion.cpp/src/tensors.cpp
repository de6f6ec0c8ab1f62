#include "tensors.h"

namespace dcpp {

namespace {

constexpr size_t kMaxTensors = 4096;  // SD 1.5 has about 1,100

}  // namespace

Weights::Weights(const stcpp::Checkpoint& checkpoint)
    : checkpoint_(checkpoint), store_(checkpoint, kMaxTensors) {}

std::vector<int64_t> Weights::shape(const std::string& name) const {
  const stcpp::TensorInfo* info = checkpoint_.find(name);
  return info ? info->shape : std::vector<int64_t>{};
}

bool Weights::check(const std::string& name, const std::vector<int64_t>& expected) {
  if (failure_) return false;
  const stcpp::TensorInfo* info = checkpoint_.find(name);
  if (!info) {
    failure_ = fail(DIFFUSION_MODEL_CORRUPT, "tensor '" + name + "' is missing");
    return false;
  }
  bool same = info->shape.size() == expected.size();
  for (size_t i = 0; same && i < expected.size(); ++i) {
    same = expected[i] < 0 || expected[i] == info->shape[i];
  }
  if (!same) {
    failure_ = fail(DIFFUSION_MODEL_CORRUPT, "tensor '" + name + "' has shape " +
                                                 stcpp::shape_text(info->shape) + ", expected " +
                                                 stcpp::shape_text(expected));
    return false;
  }
  if (info->dtype == stcpp::Dtype::U8 || info->dtype == stcpp::Dtype::I8) {
    failure_ = fail(DIFFUSION_UNSUPPORTED, "tensor '" + name + "' is quantized (" +
                                               stcpp::dtype_name(info->dtype) +
                                               "); F32, F16 and BF16 are supported");
    return false;
  }
  return true;
}

ggml_tensor* Weights::matrix(const std::string& name, const std::vector<int64_t>& expected) {
  if (!check(name, expected)) return nullptr;
  const stcpp::TensorInfo* info = checkpoint_.find(name);
  // ggml's im2col writes F16 or F32 only, so BF16 convolution kernels become F32.
  const bool bf16_kernel = info->dtype == stcpp::Dtype::BF16 && info->shape.size() == 4;
  ggml_tensor* t =
      bf16_kernel ? store_.vector_f32(name, info->shape) : store_.matrix(name, info->shape);
  if (!t && !failure_) failure_ = fail(DIFFUSION_INTERNAL, store_.failure().message);
  return t;
}

ggml_tensor* Weights::vector(const std::string& name, const std::vector<int64_t>& expected) {
  if (!check(name, expected)) return nullptr;
  ggml_tensor* t = store_.vector_f32(name, checkpoint_.find(name)->shape);
  if (!t && !failure_) failure_ = fail(DIFFUSION_INTERNAL, store_.failure().message);
  return t;
}

Failure Weights::finish() {
  if (failure_) return failure_;
  stcpp::Failure f = store_.finish();
  if (f) return fail(static_cast<diffusion_status>(f.status), f.message);
  return {};
}

}  // namespace dcpp
