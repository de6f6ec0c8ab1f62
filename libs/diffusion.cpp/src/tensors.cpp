#include "tensors.h"

namespace dcpp {

namespace {

constexpr size_t kMaxTensors = 4096;  // SD 1.5 has about 1,100

}  // namespace

void Weights::add(const stcpp::Checkpoint& checkpoint, const Rename& rename) {
  stcpp::WeightPlacement placement;
  placement.other = device_;  // every tensor, whether in a numbered layer or not
  stores_.push_back(std::make_unique<stcpp::WeightStore>(checkpoint, kMaxTensors,
                                                         stcpp::QuantizeOptions{}, placement));
  for (const auto& [stored, info] : checkpoint.tensors()) {
    std::string name = rename(stored);
    if (!name.empty()) index_[std::move(name)] = Entry{stores_.size() - 1, &info};
  }
}

const Weights::Entry* Weights::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &it->second;
}

bool Weights::has_prefix(const std::string& prefix) const {
  for (const auto& entry : index_) {
    if (entry.first.compare(0, prefix.size(), prefix) == 0) return true;
  }
  return false;
}

std::vector<int64_t> Weights::shape(const std::string& name) const {
  const Entry* e = find(name);
  return e ? e->info->shape : std::vector<int64_t>{};
}

const Weights::Entry* Weights::check(const std::string& name,
                                     const std::vector<int64_t>& expected) {
  if (failure_) return nullptr;
  const Entry* e = find(name);
  if (!e) {
    failure_ = fail(DIFFUSION_MODEL_CORRUPT, "tensor '" + name + "' is missing");
    return nullptr;
  }
  const stcpp::TensorInfo* info = e->info;
  const std::string stored =
      info->name == name ? "'" + name + "'" : "'" + info->name + "' (" + name + ")";
  bool same = info->shape.size() == expected.size();
  for (size_t i = 0; same && i < expected.size(); ++i) {
    same = expected[i] < 0 || expected[i] == info->shape[i];
  }
  if (!same) {
    failure_ = fail(DIFFUSION_MODEL_CORRUPT, "tensor " + stored + " has shape " +
                                                 stcpp::shape_text(info->shape) + ", expected " +
                                                 stcpp::shape_text(expected));
    return nullptr;
  }
  if (info->dtype != stcpp::Dtype::F32 && info->dtype != stcpp::Dtype::F16 &&
      info->dtype != stcpp::Dtype::BF16) {
    failure_ = fail(DIFFUSION_UNSUPPORTED, "tensor " + stored + " has dtype " +
                                               stcpp::dtype_name(info->dtype) +
                                               "; F32, F16 and BF16 are supported");
    return nullptr;
  }
  return e;
}

ggml_tensor* Weights::keep(ggml_tensor* t, const Entry& e) {
  if (!t && !failure_) failure_ = fail(DIFFUSION_INTERNAL, stores_[e.source]->failure().message);
  return t;
}

ggml_tensor* Weights::matrix(const std::string& name, const std::vector<int64_t>& expected) {
  const Entry* e = check(name, expected);
  if (!e) return nullptr;
  stcpp::WeightStore& store = *stores_[e->source];
  // ggml's im2col writes F16 or F32 only, so BF16 convolution kernels become F32.
  const bool bf16_kernel = e->info->dtype == stcpp::Dtype::BF16 && e->info->shape.size() == 4;
  const bool to_f32 = !f32_prefix_.empty() && name.compare(0, f32_prefix_.size(), f32_prefix_) == 0;
  return keep(bf16_kernel || to_f32 ? store.vector_f32(e->info->name, e->info->shape)
                                    : store.matrix(e->info->name, e->info->shape),
              *e);
}

ggml_tensor* Weights::vector(const std::string& name, const std::vector<int64_t>& expected) {
  const Entry* e = check(name, expected);
  if (!e) return nullptr;
  return keep(stores_[e->source]->vector_f32(e->info->name, e->info->shape), *e);
}

Failure Weights::finish() {
  if (failure_) return failure_;
  for (auto& store : stores_) {
    stcpp::Failure f = store->finish();
    if (f) return fail(static_cast<diffusion_status>(f.status), f.message);
  }
  return {};
}

size_t Weights::bytes() const {
  size_t total = 0;
  for (const auto& store : stores_) total += store->bytes();
  return total;
}

}  // namespace dcpp
