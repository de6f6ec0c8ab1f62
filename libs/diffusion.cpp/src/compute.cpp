#include "compute.h"

#include "ggml-cpu.h"

namespace dcpp {

namespace {
constexpr size_t kMaxNodes = 32768;  // SD 1.5's UNet needs about 6,000
}

Executor::Executor()
    : backend_(ggml_backend_cpu_init()),
      allocator_(ggml_gallocr_new(ggml_backend_get_default_buffer_type(backend_))) {
  ggml_backend_cpu_set_abort_callback(backend_, &Executor::abort_trampoline, this);
}

Executor::~Executor() {
  ggml_gallocr_free(allocator_);
  ggml_backend_free(backend_);
}

void Executor::set_threads(int n_threads) {
  ggml_backend_cpu_set_n_threads(backend_, n_threads);
}

bool Executor::abort_trampoline(void* self) {
  auto* executor = static_cast<Executor*>(self);
  return executor->should_abort_ && executor->should_abort_();
}

GraphRun::GraphRun(Executor& executor) : executor_(executor) {
  const size_t meta =
      ggml_tensor_overhead() * kMaxNodes + ggml_graph_overhead_custom(kMaxNodes, false);
  ctx_ = ggml_init({meta, nullptr, true});
}

GraphRun::~GraphRun() {
  ggml_free(ctx_);
}

ggml_tensor* GraphRun::input_f32(std::vector<float> values, int64_t ne0, int64_t ne1, int64_t ne2,
                                 int64_t ne3) {
  ggml_tensor* t = ggml_new_tensor_4d(ctx_, GGML_TYPE_F32, ne0, ne1, ne2, ne3);
  ggml_set_input(t);
  f32_inputs_.emplace_back(t, std::move(values));
  return t;
}

ggml_tensor* GraphRun::input_i32(std::vector<int32_t> values) {
  ggml_tensor* t = ggml_new_tensor_1d(ctx_, GGML_TYPE_I32, static_cast<int64_t>(values.size()));
  ggml_set_input(t);
  i32_inputs_.emplace_back(t, std::move(values));
  return t;
}

Failure GraphRun::compute(ggml_tensor* output, std::vector<float>* out) {
  ggml_set_output(output);
  ggml_cgraph* graph = ggml_new_graph_custom(ctx_, kMaxNodes, false);
  ggml_build_forward_expand(graph, output);
  if (!ggml_gallocr_alloc_graph(executor_.allocator_, graph)) {
    return fail(DIFFUSION_OOM_RAM, "cannot allocate the compute buffer");
  }
  for (auto& [t, values] : f32_inputs_)
    ggml_backend_tensor_set(t, values.data(), 0, ggml_nbytes(t));
  for (auto& [t, values] : i32_inputs_)
    ggml_backend_tensor_set(t, values.data(), 0, ggml_nbytes(t));
  const ggml_status status = ggml_backend_graph_compute(executor_.backend_, graph);
  if (status == GGML_STATUS_ABORTED) return fail(DIFFUSION_CANCELLED, "cancelled");
  if (status != GGML_STATUS_SUCCESS) return fail(DIFFUSION_INTERNAL, "the computation failed");
  out->resize(ggml_nelements(output));
  ggml_backend_tensor_get(output, out->data(), 0, ggml_nbytes(output));
  return {};
}

}  // namespace dcpp
