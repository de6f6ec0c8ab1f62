#include "weights.h"

#include <cstring>

#include "ggml-alloc.h"
#include "ggml-cpu.h"

namespace stcpp {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

namespace {

ggml_type ggml_type_of(Dtype dtype) {
  switch (dtype) {
    case Dtype::F32: return GGML_TYPE_F32;
    case Dtype::F16: return GGML_TYPE_F16;
    case Dtype::BF16: return GGML_TYPE_BF16;
    default: return GGML_TYPE_I8;  // U8, I8 (raw bytes); the others are never mapped
  }
}

template <typename T>
void convert(const TensorInfo& info, std::vector<float>* out) {
  for (size_t i = 0; i < out->size(); ++i) {
    T v;
    std::memcpy(&v, info.data() + i * sizeof(T), sizeof(T));
    (*out)[i] = static_cast<float>(v);
  }
}

std::vector<float> to_f32(const TensorInfo& info) {
  std::vector<float> out(info.elements());
  const int64_t n = static_cast<int64_t>(out.size());
  switch (info.dtype) {
    case Dtype::F32: std::memcpy(out.data(), info.data(), info.nbytes); break;
    case Dtype::F16:
      ggml_fp16_to_fp32_row(reinterpret_cast<const ggml_fp16_t*>(info.data()), out.data(), n);
      break;
    case Dtype::BF16:
      ggml_bf16_to_fp32_row(reinterpret_cast<const ggml_bf16_t*>(info.data()), out.data(), n);
      break;
    case Dtype::U8:
    case Dtype::BOOL: convert<uint8_t>(info, &out); break;
    case Dtype::I8: convert<int8_t>(info, &out); break;
    case Dtype::I16: convert<int16_t>(info, &out); break;
    case Dtype::U16: convert<uint16_t>(info, &out); break;
    case Dtype::I32: convert<int32_t>(info, &out); break;
    case Dtype::U32: convert<uint32_t>(info, &out); break;
    case Dtype::I64: convert<int64_t>(info, &out); break;
    case Dtype::U64: convert<uint64_t>(info, &out); break;
    case Dtype::F64: convert<double>(info, &out); break;
  }
  return out;
}

ggml_context* new_meta_context(size_t max_tensors) {
  ggml_init_params params{ggml_tensor_overhead() * (max_tensors + 8), nullptr, true};
  return ggml_init(params);
}

}  // namespace

WeightStore::WeightStore(const Checkpoint& checkpoint, size_t max_tensors)
    : checkpoint_(checkpoint),
      mapped_ctx_(new_meta_context(max_tensors)),
      owned_ctx_(new_meta_context(max_tensors)) {
  for (const auto& file : checkpoint.files()) {
    file_buffers_.push_back(
        ggml_backend_cpu_buffer_from_ptr(const_cast<uint8_t*>(file->data()), file->size()));
  }
}

WeightStore::~WeightStore() {
  for (ggml_backend_buffer_t buffer : file_buffers_) ggml_backend_buffer_free(buffer);
  if (owned_buffer_) ggml_backend_buffer_free(owned_buffer_);
  ggml_free(mapped_ctx_);
  ggml_free(owned_ctx_);
}

const TensorInfo* WeightStore::lookup(const std::string& name, const std::vector<int64_t>& shape,
                                      bool required) {
  if (failure_) return nullptr;
  const TensorInfo* info = checkpoint_.find(name);
  if (!info) {
    if (required) failure_ = fail(STCPP_LOAD_FAILED, "tensor '" + name + "' is missing");
    return nullptr;
  }
  if (info->shape != shape) {
    failure_ =
        fail(STCPP_MODEL_CORRUPT, "tensor '" + name + "' has shape " + shape_text(info->shape) +
                                      " but config.json implies " + shape_text(shape));
    return nullptr;
  }
  return info;
}

ggml_tensor* WeightStore::new_tensor(ggml_context* ctx, ggml_type type,
                                     const std::vector<int64_t>& shape, const std::string& name) {
  int64_t ne[4] = {1, 1, 1, 1};
  for (size_t i = 0; i < shape.size(); ++i) ne[i] = shape[shape.size() - 1 - i];
  ggml_tensor* t = ggml_new_tensor(ctx, type, static_cast<int>(shape.size()), ne);
  ggml_set_name(t, name.c_str());
  return t;
}

ggml_tensor* WeightStore::matrix(const std::string& name, std::vector<int64_t> shape,
                                 bool required) {
  const TensorInfo* info = lookup(name, shape, required);
  if (!info) return nullptr;
  if (info->dtype != Dtype::F32 && info->dtype != Dtype::F16 && info->dtype != Dtype::BF16) {
    failure_ =
        fail(STCPP_UNSUPPORTED, "tensor '" + name + "' has dtype " + dtype_name(info->dtype) +
                                    ", which this architecture does not use");
    return nullptr;
  }
  ggml_tensor* t = new_tensor(mapped_ctx_, ggml_type_of(info->dtype), shape, name);
  size_t file_index = 0;
  while (checkpoint_.files()[file_index].get() != info->file) ++file_index;
  const ggml_status status =
      ggml_backend_tensor_alloc(file_buffers_[file_index], t, const_cast<uint8_t*>(info->data()));
  if (status != GGML_STATUS_SUCCESS) {
    failure_ = fail(STCPP_INTERNAL, "cannot map tensor '" + name + "'");
    return nullptr;
  }
  return t;
}

ggml_tensor* WeightStore::vector_f32(const std::string& name, std::vector<int64_t> shape,
                                     bool required) {
  const TensorInfo* info = lookup(name, shape, required);
  if (!info) return nullptr;
  ggml_tensor* t = new_tensor(owned_ctx_, GGML_TYPE_F32, shape, name);
  pending_.emplace_back(t, to_f32(*info));
  return t;
}

ggml_tensor* WeightStore::norm_plus_one(const std::string& name, std::vector<int64_t> shape) {
  ggml_tensor* t = vector_f32(name, std::move(shape));
  if (t) {
    for (float& v : pending_.back().second) v += 1.0f;
  }
  return t;
}

ggml_tensor* WeightStore::new_f32(const std::string& name, const std::vector<float>& values) {
  ggml_tensor* t =
      new_tensor(owned_ctx_, GGML_TYPE_F32, {static_cast<int64_t>(values.size())}, name);
  pending_.emplace_back(t, values);
  return t;
}

const TensorInfo* WeightStore::raw(const std::string& name, const std::vector<int64_t>& shape,
                                   Dtype dtype) {
  const TensorInfo* info = lookup(name, shape, true);
  if (info && info->dtype != dtype) {
    failure_ =
        fail(STCPP_MODEL_CORRUPT, "tensor '" + name + "' has dtype " + dtype_name(info->dtype) +
                                      ", expected " + dtype_name(dtype));
    return nullptr;
  }
  return info;
}

std::vector<float> WeightStore::values_f32(const std::string& name,
                                           const std::vector<int64_t>& shape) {
  const TensorInfo* info = lookup(name, shape, true);
  return info ? to_f32(*info) : std::vector<float>();
}

ggml_tensor* WeightStore::new_computed(const std::string& name, ggml_type type,
                                       const std::vector<int64_t>& ne,
                                       std::function<void(uint8_t*)> fill) {
  std::vector<int64_t> shape(ne.rbegin(), ne.rend());  // new_tensor takes outermost first
  ggml_tensor* t = new_tensor(owned_ctx_, type, shape, name);
  pending_fills_.emplace_back(t, std::move(fill));
  return t;
}

Failure WeightStore::finish() {
  if (failure_) return failure_;
  if (pending_.empty() && pending_fills_.empty()) return {};
  owned_buffer_ =
      ggml_backend_alloc_ctx_tensors_from_buft(owned_ctx_, ggml_backend_cpu_buffer_type());
  if (!owned_buffer_) return fail(STCPP_OOM_RAM, "cannot allocate the converted weights");
  for (auto& [tensor, values] : pending_) {
    ggml_backend_tensor_set(tensor, values.data(), 0, values.size() * sizeof(float));
  }
  pending_.clear();
  // The owned buffer is host memory (CPU buffer type), so fills write straight into it.
  for (auto& [tensor, fill] : pending_fills_) fill(static_cast<uint8_t*>(tensor->data));
  pending_fills_.clear();
  return {};
}

size_t WeightStore::bytes() const {
  size_t total = owned_buffer_ ? ggml_backend_buffer_get_size(owned_buffer_) : 0;
  for (const auto& file : checkpoint_.files()) total += file->size();
  return total;
}

}  // namespace stcpp
