#include "safetensors/weight_store.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <tuple>

#include "ggml-alloc.h"
#include "ggml-cpu.h"
#include "parallel.h"

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

// `n` float values (F32, F16 or BF16) from `src` as F32.
void float_row_to_f32(Dtype dtype, const uint8_t* src, int64_t n, float* out) {
  switch (dtype) {
    case Dtype::F16:
      ggml_fp16_to_fp32_row(reinterpret_cast<const ggml_fp16_t*>(src), out, n);
      break;
    case Dtype::BF16:
      ggml_bf16_to_fp32_row(reinterpret_cast<const ggml_bf16_t*>(src), out, n);
      break;
    default: std::memcpy(out, src, n * sizeof(float)); break;
  }
}

std::vector<float> to_f32(const TensorInfo& info) {
  std::vector<float> out(info.elements());
  const int64_t n = static_cast<int64_t>(out.size());
  switch (info.dtype) {
    case Dtype::F32:
    case Dtype::F16:
    case Dtype::BF16: float_row_to_f32(info.dtype, info.data(), n, out.data()); break;
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

// Quantizes rows [first_row, first_row + n_rows) of a float matrix as llama.cpp's quantizer
// does: each row converted to F32, then ggml_quantize_chunk (no importance matrix), a row at a
// time (the callers already split the rows into small chunks).
void quantize_rows(const TensorInfo& info, ggml_type type, int64_t first_row, int64_t n_rows,
                   uint8_t* dst) {
  const int64_t width = info.shape.back();
  const size_t src_row = width * dtype_size(info.dtype), dst_row = ggml_row_size(type, width);
  std::vector<float> f32(width);
  ggml_quantize_init(type);
  for (int64_t r = 0; r < n_rows; ++r) {
    float_row_to_f32(info.dtype, info.data() + (first_row + r) * src_row, width, f32.data());
    ggml_quantize_chunk(type, f32.data(), dst + r * dst_row, 0, 1, width, nullptr);
  }
}

ggml_context* new_meta_context(size_t max_tensors) {
  ggml_init_params params{ggml_tensor_overhead() * (max_tensors + 8), nullptr, true};
  return ggml_init(params);
}

// The CPU's extra buffer types (repacked layouts), in llama.cpp's order of preference.
std::vector<ggml_backend_buffer_type_t> cpu_extra_buffer_types() {
  std::vector<ggml_backend_buffer_type_t> types;
  ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
  if (!cpu) return types;
  auto extra_types =
      reinterpret_cast<ggml_backend_dev_get_extra_bufts_t>(ggml_backend_reg_get_proc_address(
          ggml_backend_dev_backend_reg(cpu), "ggml_backend_dev_get_extra_bufts"));
  if (!extra_types) return types;
  for (ggml_backend_buffer_type_t* t = extra_types(cpu); t && *t; ++t) types.push_back(*t);
  return types;
}

// The first of `extra_types` whose kernels take a `type` weight of ggml shape `ne` in
// ggml_mul_mat (2-D) or ggml_mul_mat_id (3-D), asked as llama.cpp asks: the product with the
// weight in a zero-sized buffer of that type; null when none does.
ggml_backend_buffer_type_t cpu_extra_weight_type(
    const std::vector<ggml_backend_buffer_type_t>& extra_types, ggml_type type,
    const std::vector<int64_t>& ne) {
  ggml_backend_dev_t cpu = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
  if (!cpu || extra_types.empty() || ne.size() < 2 || ne.size() > 3) return nullptr;
  constexpr int64_t kTokens = 8;
  ggml_context* ctx = new_meta_context(4);
  ggml_tensor* weight = ggml_new_tensor(ctx, type, static_cast<int>(ne.size()), ne.data());
  ggml_tensor* product =
      ne.size() == 2
          ? ggml_mul_mat(ctx, weight, ggml_new_tensor_2d(ctx, GGML_TYPE_F32, ne[0], kTokens))
          : ggml_mul_mat_id(ctx, weight, ggml_new_tensor_3d(ctx, GGML_TYPE_F32, ne[0], 1, kTokens),
                            ggml_new_tensor_2d(ctx, GGML_TYPE_I32, 1, kTokens));
  ggml_backend_buffer_type_t found = nullptr;
  for (size_t i = 0; i < extra_types.size() && !found; ++i) {
    ggml_backend_buffer_t probe = ggml_backend_buft_alloc_buffer(extra_types[i], 0);
    weight->buffer = probe;
    if (ggml_backend_dev_supports_op(cpu, product)) found = extra_types[i];
    weight->buffer = nullptr;
    ggml_backend_buffer_free(probe);
  }
  ggml_free(ctx);
  return found;
}

}  // namespace

int layer_of(const std::string& name) {
  const std::string marker = "layers.";
  const size_t at = name.find(marker);
  if (at == std::string::npos) return -1;
  size_t end = at + marker.size();
  int layer = 0;
  bool digits = false;
  for (; end < name.size() && std::isdigit(static_cast<unsigned char>(name[end])); ++end) {
    if (layer > 1000000) return -1;
    layer = layer * 10 + (name[end] - '0');
    digits = true;
  }
  return digits && end < name.size() && name[end] == '.' ? layer : -1;
}

ggml_type output_head_type(ggml_type type, int64_t row_width) {
  if (type == GGML_TYPE_Q8_0 || row_width % ggml_blck_size(type) != 0) return GGML_TYPE_Q8_0;
  return row_width % ggml_blck_size(GGML_TYPE_Q6_K) == 0 ? GGML_TYPE_Q6_K : GGML_TYPE_Q8_0;
}

WeightStore::WeightStore(const Checkpoint& checkpoint, size_t max_tensors, QuantizeOptions quantize,
                         WeightPlacement placement)
    : checkpoint_(checkpoint),
      mapped_ctx_(new_meta_context(max_tensors)),
      owned_ctx_(new_meta_context(max_tensors)),
      max_tensors_(max_tensors),
      placement_(std::move(placement)),
      quantize_(quantize) {
  if (placement_.cpu_repack) cpu_extra_types_ = cpu_extra_buffer_types();
  // Marked as weights, so that ggml's scheduler runs an op on a mapped tensor where it lies
  // (the token embeddings' lookup on the CPU) instead of copying the tensor to the GPU for
  // every batch.
  for (const auto& file : checkpoint.files()) {
    file_buffers_.push_back(
        ggml_backend_cpu_buffer_from_ptr(const_cast<uint8_t*>(file->data()), file->size()));
    ggml_backend_buffer_set_usage(file_buffers_.back(), GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
  }
}

WeightStore::~WeightStore() {
  for (ggml_backend_buffer_t buffer : file_buffers_) ggml_backend_buffer_free(buffer);
  if (owned_buffer_) ggml_backend_buffer_free(owned_buffer_);
  for (std::vector<TypedWeights>* contexts : {&devices_, &repacked_}) {
    for (TypedWeights& c : *contexts) {
      if (c.buffer) ggml_backend_buffer_free(c.buffer);
      ggml_free(c.ctx);
    }
  }
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

const TensorInfo* WeightStore::float_matrix(const std::string& name,
                                            const std::vector<int64_t>& shape, bool required) {
  const TensorInfo* info = lookup(name, shape, required);
  if (!info) return nullptr;
  if (info->dtype != Dtype::F32 && info->dtype != Dtype::F16 && info->dtype != Dtype::BF16) {
    failure_ =
        fail(STCPP_UNSUPPORTED, "tensor '" + name + "' has dtype " + dtype_name(info->dtype) +
                                    ", which this architecture does not use");
    return nullptr;
  }
  return info;
}

ggml_backend_buffer_type_t WeightStore::device_of(const std::string& name) const {
  const int layer = layer_of(name);
  return layer >= 0 && layer < static_cast<int>(placement_.layers.size()) ? placement_.layers[layer]
                                                                          : placement_.other;
}

ggml_context* WeightStore::typed_context(std::vector<TypedWeights>* contexts,
                                         ggml_backend_buffer_type_t type) {
  for (const TypedWeights& c : *contexts) {
    if (c.type == type) return c.ctx;
  }
  contexts->push_back({type, new_meta_context(max_tensors_), nullptr});
  return contexts->back().ctx;
}

ggml_context* WeightStore::device_context(ggml_backend_buffer_type_t device) {
  return typed_context(&devices_, device);
}

ggml_context* WeightStore::owned_context(const std::string& name) {
  ggml_backend_buffer_type_t device = device_of(name);
  return device ? device_context(device) : owned_ctx_;
}

ggml_context* WeightStore::weight_context(const std::string& name, ggml_type type,
                                          const std::vector<int64_t>& ne) {
  if (device_of(name) || !placement_.cpu_repack) return owned_context(name);
  ggml_backend_buffer_type_t extra = cpu_extra_weight_type(cpu_extra_types_, type, ne);
  return extra ? typed_context(&repacked_, extra) : owned_ctx_;
}

ggml_tensor* WeightStore::mapped(const TensorInfo& info, const std::string& name, bool host) {
  ggml_backend_buffer_type_t device = host ? nullptr : device_of(name);
  if (device) {
    ggml_tensor* t = new_tensor(device_context(device), ggml_type_of(info.dtype), info.shape, name);
    uploads_.emplace_back(t, &info);
    uploaded_bytes_ += ggml_nbytes(t);
    return t;
  }
  ggml_tensor* t = new_tensor(mapped_ctx_, ggml_type_of(info.dtype), info.shape, name);
  if (!host) prefetches_.push_back(&info);
  size_t file_index = 0;
  while (checkpoint_.files()[file_index].get() != info.file) ++file_index;
  const ggml_status status =
      ggml_backend_tensor_alloc(file_buffers_[file_index], t, const_cast<uint8_t*>(info.data()));
  if (status != GGML_STATUS_SUCCESS) {
    failure_ = fail(STCPP_INTERNAL, "cannot map tensor '" + name + "'");
    return nullptr;
  }
  return t;
}

ggml_tensor* WeightStore::quantized(const TensorInfo& info, const std::string& name, ggml_type type,
                                    bool repackable) {
  if (info.shape.back() % ggml_blck_size(type) != 0) {
    unquantized_.push_back(name);
    return mapped(info, name);
  }
  const TensorInfo* source = &info;  // lives in the checkpoint, as long as the store
  auto fill = [source, type](uint8_t* rows, int64_t first_row, int64_t n_rows) {
    quantize_rows(*source, type, first_row, n_rows, rows);
  };
  const std::vector<int64_t> ne(info.shape.rbegin(), info.shape.rend());
  ggml_tensor* t = repackable ? new_computed_weight(name, type, ne, std::move(fill), {source})
                              : new_computed(name, type, ne, std::move(fill), {source});
  quantized_.push_back(t);
  quantized_source_bytes_ += info.nbytes;
  return t;
}

ggml_tensor* WeightStore::matrix(const std::string& name, std::vector<int64_t> shape,
                                 bool required) {
  const TensorInfo* info = float_matrix(name, shape, required);
  if (!info) return nullptr;
  if (quantize_.type == GGML_TYPE_COUNT) return mapped(*info, name);
  return quantized(*info, name, quantize_.type);
}

ggml_tensor* WeightStore::embeddings(const std::string& name, std::vector<int64_t> shape) {
  const TensorInfo* info = float_matrix(name, shape, true);
  return info ? mapped(*info, name, /*host=*/true) : nullptr;
}

ggml_tensor* WeightStore::output_head(const std::string& name, std::vector<int64_t> shape,
                                      bool tied) {
  const TensorInfo* info = float_matrix(name, shape, true);
  if (!info) return nullptr;
  if (quantize_.type == GGML_TYPE_COUNT) return mapped(*info, name);
  return quantized(*info, name, output_head_type(quantize_.type, info->shape.back()), !tied);
}

ggml_tensor* WeightStore::vector_f32(const std::string& name, std::vector<int64_t> shape,
                                     bool required) {
  const TensorInfo* info = lookup(name, shape, required);
  if (!info) return nullptr;
  ggml_tensor* t = new_tensor(owned_context(name), GGML_TYPE_F32, shape, name);
  pending_.emplace_back(t, [info] { return to_f32(*info); });
  return t;
}

ggml_tensor* WeightStore::norm_plus_one(const std::string& name, std::vector<int64_t> shape) {
  ggml_tensor* t = vector_f32(name, std::move(shape));
  if (t) {
    pending_.back().second = [stored = std::move(pending_.back().second)] {
      std::vector<float> values = stored();
      for (float& v : values) v += 1.0f;
      return values;
    };
  }
  return t;
}

ggml_tensor* WeightStore::new_f32(const std::string& name, const std::vector<float>& values) {
  ggml_tensor* t =
      new_tensor(owned_context(name), GGML_TYPE_F32, {static_cast<int64_t>(values.size())}, name);
  pending_.emplace_back(t, [values] { return values; });
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
                                       const std::vector<int64_t>& ne, Fill fill,
                                       std::vector<const TensorInfo*> sources) {
  return add_computed(owned_context(name), name, type, ne, std::move(fill), std::move(sources));
}

ggml_tensor* WeightStore::new_computed_weight(const std::string& name, ggml_type type,
                                              const std::vector<int64_t>& ne, Fill fill,
                                              std::vector<const TensorInfo*> sources) {
  return add_computed(weight_context(name, type, ne), name, type, ne, std::move(fill),
                      std::move(sources));
}

ggml_tensor* WeightStore::add_computed(ggml_context* ctx, const std::string& name, ggml_type type,
                                       const std::vector<int64_t>& ne, Fill fill,
                                       std::vector<const TensorInfo*> sources) {
  std::vector<int64_t> shape(ne.rbegin(), ne.rend());  // new_tensor takes outermost first
  ggml_tensor* t = new_tensor(ctx, type, shape, name);
  pending_fills_.push_back({t, std::move(fill), std::move(sources)});
  return t;
}

namespace {

// The bytes of a context's tensors: its buffer once allocated, else what `type` allocates for
// them (a repacked layout may take more than the tensor's blocks: AMX adds sums to Q8_0's).
size_t context_bytes(ggml_context* ctx, ggml_backend_buffer_t buffer,
                     ggml_backend_buffer_type_t type) {
  if (buffer) return ggml_backend_buffer_get_size(buffer);
  size_t total = 0;
  for (ggml_tensor* t = ggml_get_first_tensor(ctx); t; t = ggml_get_next_tensor(ctx, t)) {
    total += ggml_backend_buft_get_alloc_size(type, t);
  }
  return total;
}

bool has_tensors(ggml_context* ctx) {
  return ggml_get_first_tensor(ctx) != nullptr;
}

// Rows a fill writes at a time: a multiple of every repacked layout's interleave (4, 8 or 16
// rows), small enough for the converted rows to be repacked from the cache.
constexpr int64_t kFillChunkRows = 64;

// Calls write(worker, first_row, n_rows) over `t`'s rows a chunk at a time, on `threads` threads
// (workers 0 ..) taking alternate chunks.
template <typename Write>
void for_each_row_chunk(const ggml_tensor* t, int threads, Write write) {
  const int64_t rows = ggml_nrows(t), chunks = (rows + kFillChunkRows - 1) / kFillChunkRows;
  for_each_strided(chunks, threads, [&](int64_t worker, int64_t step) {
    for (int64_t c = worker; c < chunks; c += step) {
      const int64_t first = c * kFillChunkRows;
      write(worker, first, std::min(kFillChunkRows, rows - first));
    }
  });
}

// A view of `t`'s rows [first_row, first_row + n_rows), in `ctx`, placed in t's buffer.
ggml_tensor* rows_view(ggml_context* ctx, ggml_tensor* t, int64_t first_row, int64_t n_rows) {
  ggml_tensor* view = ggml_view_2d(ctx, t, t->ne[0], n_rows, t->nb[1], first_row * t->nb[1]);
  return ggml_backend_view_init(view) == GGML_STATUS_SUCCESS ? view : nullptr;
}

// Whether a view of `n_rows` of `t`'s rows gets t's repacked layout.
bool view_repacks_alike(ggml_tensor* t, int64_t n_rows) {
  ggml_context* ctx = ggml_init({ggml_tensor_overhead(), nullptr, true});
  const ggml_tensor* view = rows_view(ctx, t, 0, n_rows);
  const bool alike = view && view->extra == t->extra;
  ggml_free(ctx);
  return alike;
}

// Whether `t`'s repacked buffer takes it a chunk of rows at a time: ggml's CPU_REPACK repacks
// groups of rows in place, at the rows' offsets, so a view of a chunk (of whole groups) is
// repacked as in the whole tensor.
bool repacks_by_rows(ggml_tensor* t) {
  const int64_t rows = ggml_nrows(t), last = rows % kFillChunkRows;
  return ggml_backend_buft_get_alloc_size(ggml_backend_buffer_get_type(t->buffer), t) ==
             ggml_nbytes(t) &&
         view_repacks_alike(t, std::min(rows, kFillChunkRows)) &&
         (last == 0 || view_repacks_alike(t, last));
}

}  // namespace

// Host tensors are filled in place. Others through staging copies: a repacked one a chunk of rows
// at a time, each load thread converting its chunk into a small copy and setting it through a
// view (ggml repacks on the thread that sets, and the rows are still in its cache); a device's
// (or one repacked only whole) through a copy of the whole tensor.
void WeightStore::fill_computed(const PendingFill& pending, Staging* whole) {
  ggml_tensor* t = pending.tensor;
  const int threads = quantize_.n_threads;
  if (ggml_backend_buffer_is_host(t->buffer)) {
    auto* data = static_cast<uint8_t*>(t->data);
    for_each_row_chunk(t, threads, [&](int64_t, int64_t first, int64_t n) {
      pending.fill(data + first * t->nb[1], first, n);
    });
  } else if (is_repacked(t) && repacks_by_rows(t)) {
    std::vector<std::vector<uint8_t>> staging(threads);
    std::vector<ggml_context*> views(threads);
    for (int i = 0; i < threads; ++i) {
      staging[i].resize(kFillChunkRows * t->nb[1]);
      views[i] = ggml_init({ggml_tensor_overhead(), nullptr, true});
    }
    for_each_row_chunk(t, threads, [&](int64_t worker, int64_t first, int64_t n) {
      pending.fill(staging[worker].data(), first, n);
      ggml_tensor* view = rows_view(views[worker], t, first, n);
      GGML_ASSERT(view);  // repacks_by_rows placed such views
      ggml_backend_tensor_set(view, staging[worker].data(), 0, ggml_nbytes(view));
      ggml_reset(views[worker]);
    });
    for (ggml_context* ctx : views) ggml_free(ctx);
  } else {
    uint8_t* staging = whole->at_least(ggml_nbytes(t));
    for_each_row_chunk(t, threads, [&](int64_t, int64_t first, int64_t n) {
      pending.fill(staging + first * t->nb[1], first, n);
    });
    ggml_backend_tensor_set(t, staging, 0, ggml_nbytes(t));
  }
  for (const TensorInfo* source : pending.sources) {
    source->file->release(source->offset, source->nbytes);
  }
}

bool WeightStore::is_repacked(const ggml_tensor* t) const {
  for (const TypedWeights& c : repacked_) {
    if (t->buffer == c.buffer) return true;
  }
  return false;
}

Failure WeightStore::finish() {
  if (failure_) return failure_;
  if (has_tensors(owned_ctx_)) {
    owned_buffer_ =
        ggml_backend_alloc_ctx_tensors_from_buft(owned_ctx_, ggml_backend_cpu_buffer_type());
    if (!owned_buffer_) return fail(STCPP_OOM_RAM, "cannot allocate the converted weights");
    ggml_backend_buffer_set_usage(owned_buffer_, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
  }
  for (TypedWeights& repacked : repacked_) {
    repacked.buffer = ggml_backend_alloc_ctx_tensors_from_buft(repacked.ctx, repacked.type);
    if (!repacked.buffer) return fail(STCPP_OOM_RAM, "cannot allocate the repacked weights");
    ggml_backend_buffer_set_usage(repacked.buffer, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
  }
  for (TypedWeights& device : devices_) {
    device.buffer = ggml_backend_alloc_ctx_tensors_from_buft(device.ctx, device.type);
    if (!device.buffer) {
      return fail(STCPP_OOM_VRAM,
                  "cannot allocate " +
                      std::to_string(context_bytes(device.ctx, nullptr, device.type)) +
                      " bytes of weights on " + ggml_backend_buft_name(device.type));
    }
    ggml_backend_buffer_set_usage(device.buffer, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
  }
  // Weights computed from in place are read whole by the first batch: map them in now. The
  // token embeddings are not (only the rows of the tokens seen are read). In file order and
  // before any other read of the files: a cold file read out of order or in scattered spots
  // keeps its readahead small and leaves small page-cache folios, which every later load then
  // maps in page by page (~15x slower than large ones).
  std::sort(prefetches_.begin(), prefetches_.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return std::tie(a->file, a->offset) < std::tie(b->file, b->offset);
  });
  for (const TensorInfo* info : prefetches_) info->file->prefetch(info->offset, info->nbytes);
  prefetches_.clear();
  for (auto& [tensor, compute] : pending_) {
    const std::vector<float> values = compute();
    ggml_backend_tensor_set(tensor, values.data(), 0, values.size() * sizeof(float));
  }
  pending_.clear();
  Staging staging;
  for (PendingFill& pending : pending_fills_) fill_computed(pending, &staging);
  pending_fills_.clear();
  for (auto& [tensor, info] : uploads_) {
    ggml_backend_tensor_set(tensor, info->data(), 0, info->nbytes);
    info->file->release(info->offset, info->nbytes);
  }
  uploads_.clear();
  return {};
}

size_t WeightStore::bytes() const {
  size_t total = context_bytes(owned_ctx_, owned_buffer_, ggml_backend_cpu_buffer_type());
  for (const TypedWeights& c : repacked_) total += context_bytes(c.ctx, c.buffer, c.type);
  for (const auto& file : checkpoint_.files()) total += file->size();
  // The device holds copies of stored tensors (their pages released once uploaded) and computed
  // ones: only the computed ones add to the files.
  return total + device_bytes() - uploaded_bytes_ - quantized_source_bytes_;
}

size_t WeightStore::device_bytes() const {
  size_t total = 0;
  for (const TypedWeights& device : devices_) {
    total += context_bytes(device.ctx, device.buffer, device.type);
  }
  return total;
}

std::string WeightStore::quantization_summary() const {
  if (quantize_.type == GGML_TYPE_COUNT) return "";
  std::map<std::string, int> per_type;
  size_t bytes = 0;
  for (const ggml_tensor* t : quantized_) {
    ++per_type[ggml_type_name(t->type)];
    bytes += ggml_nbytes(t);
  }
  std::string out = "quantized";
  for (const auto& [type, count] : per_type) {
    out += (out.size() > 9 ? ", " : " ") + std::to_string(count) + " matrices to " + type;
  }
  if (per_type.empty()) out += " no matrices";
  out += " (" + std::to_string(quantized_source_bytes_ >> 20) + " MiB -> " +
         std::to_string(bytes >> 20) + " MiB)";
  if (!unquantized_.empty()) {
    out += "; kept as stored, their row width not a multiple of the block size:";
    for (const std::string& name : unquantized_) out += " " + name;
  }
  return out;
}

}  // namespace stcpp
