#include "kv_cache.h"

#include <cstring>
#include <map>

#include "ggml-alloc.h"

namespace stcpp {

KvCache::~KvCache() {
  for (ggml_backend_buffer_t buffer : buffers_) ggml_backend_buffer_free(buffer);
  for (ggml_context* ctx : contexts_) ggml_free(ctx);
}

Failure KvCache::init(const std::vector<ggml_backend_buffer_type_t>& layer_buffer_type,
                      int64_t k_row, int64_t v_row, int ctx_per_seq, int n_seq, ggml_type type) {
  const int n_layer = static_cast<int>(layer_buffer_type.size());
  const int64_t cells = static_cast<int64_t>(ctx_per_seq) * n_seq;
  std::map<ggml_backend_buffer_type_t, ggml_context*> context_of;
  for (ggml_backend_buffer_type_t buft : layer_buffer_type) {
    if (context_of.count(buft)) continue;
    ggml_init_params params{ggml_tensor_overhead() * (2 * n_layer + 2), nullptr, true};
    contexts_.push_back(ggml_init(params));
    context_of[buft] = contexts_.back();
  }
  for (int l = 0; l < n_layer; ++l) {
    ggml_context* ctx = context_of[layer_buffer_type[l]];
    k_.push_back(ggml_new_tensor_2d(ctx, type, k_row, cells));
    v_.push_back(ggml_new_tensor_2d(ctx, type, v_row, cells));
  }
  for (const auto& [buft, ctx] : context_of) {
    ggml_backend_buffer_t buffer = ggml_backend_alloc_ctx_tensors_from_buft(ctx, buft);
    if (!buffer) {
      return fail(ggml_backend_buft_is_host(buft) ? STCPP_OOM_RAM : STCPP_OOM_VRAM,
                  "cannot allocate a KV cache of " + std::to_string(cells) + " cells x " +
                      std::to_string(n_layer) + " layers in " + ggml_backend_buft_name(buft));
    }
    ggml_backend_buffer_clear(buffer, 0);
    buffers_.push_back(buffer);
  }
  length_.assign(n_seq, 0);
  ctx_per_seq_ = ctx_per_seq;
  return {};
}

void KvCache::copy_prefix(int from, int to, int length) {
  // Each sequence owns ctx_per_seq_ consecutive rows of every layer's K and V: rows of host
  // memory are copied directly, a device's through a staging copy.
  std::vector<uint8_t> staging;
  for (const std::vector<ggml_tensor*>* tensors : {&k_, &v_}) {
    for (ggml_tensor* t : *tensors) {
      const size_t size = t->nb[1] * length;
      const size_t src = t->nb[1] * from * ctx_per_seq_, dst = t->nb[1] * to * ctx_per_seq_;
      if (ggml_backend_buffer_is_host(t->buffer)) {
        char* base = static_cast<char*>(t->data);
        std::memcpy(base + dst, base + src, size);
        continue;
      }
      staging.resize(size);
      ggml_backend_tensor_get(t, staging.data(), src, size);
      ggml_backend_tensor_set(t, staging.data(), dst, size);
    }
  }
  length_[to] = length;
}

size_t KvCache::bytes() const {
  size_t total = 0;
  for (ggml_backend_buffer_t buffer : buffers_) total += ggml_backend_buffer_get_size(buffer);
  return total;
}

}  // namespace stcpp
