#include "kv_cache.h"

#include <cstring>

#include "ggml-alloc.h"
#include "ggml-cpu.h"

namespace stcpp {

KvCache::~KvCache() {
  if (buffer_) ggml_backend_buffer_free(buffer_);
  if (ctx_) ggml_free(ctx_);
}

Failure KvCache::init(int n_layer, int64_t k_row, int64_t v_row, int ctx_per_seq, int n_seq,
                      ggml_type type) {
  ggml_init_params params{ggml_tensor_overhead() * (2 * n_layer + 2), nullptr, true};
  ctx_ = ggml_init(params);
  const int64_t cells = static_cast<int64_t>(ctx_per_seq) * n_seq;
  for (int l = 0; l < n_layer; ++l) {
    k_.push_back(ggml_new_tensor_2d(ctx_, type, k_row, cells));
    v_.push_back(ggml_new_tensor_2d(ctx_, type, v_row, cells));
  }
  buffer_ = ggml_backend_alloc_ctx_tensors_from_buft(ctx_, ggml_backend_cpu_buffer_type());
  if (!buffer_) {
    return fail(STCPP_OOM_RAM, "cannot allocate a KV cache of " + std::to_string(cells) +
                                   " cells x " + std::to_string(n_layer) + " layers");
  }
  ggml_backend_buffer_clear(buffer_, 0);
  length_.assign(n_seq, 0);
  ctx_per_seq_ = ctx_per_seq;
  return {};
}

void KvCache::copy_prefix(int from, int to, int length) {
  // Each sequence owns ctx_per_seq_ consecutive rows of every layer's K and V; the buffer is in
  // host memory (the CPU buffer type), so rows are copied directly.
  for (const std::vector<ggml_tensor*>* tensors : {&k_, &v_}) {
    for (ggml_tensor* t : *tensors) {
      char* base = static_cast<char*>(t->data);
      std::memcpy(base + t->nb[1] * to * ctx_per_seq_, base + t->nb[1] * from * ctx_per_seq_,
                  t->nb[1] * length);
    }
  }
  length_[to] = length;
}

}  // namespace stcpp
