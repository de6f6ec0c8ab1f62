#include "compute.h"

#include "ggml-alloc.h"
#include "ggml-cpu.h"

namespace dcpp {

namespace {
constexpr size_t kMaxNodes = 32768;  // SD 1.5's UNet needs about 6,000
}

Failure Executor::start(ggml_backend_dev_t device) {
  if (device) {
    ggml_backend_t gpu = ggml_backend_dev_init(device, nullptr);
    if (!gpu) {
      return fail(DIFFUSION_INTERNAL,
                  std::string("cannot start the device ") + ggml_backend_dev_name(device));
    }
    backends_.push_back(gpu);
    on_device_ = true;
  }
  cpu_ = ggml_backend_cpu_init();
  if (!cpu_) return fail(DIFFUSION_INTERNAL, "cannot start the CPU backend");
  backends_.push_back(cpu_);
  ggml_backend_cpu_set_abort_callback(cpu_, &Executor::abort_trampoline, this);
  scheduler_ = ggml_backend_sched_new(backends_.data(), nullptr, static_cast<int>(backends_.size()),
                                      kMaxNodes, false, true);
  if (!scheduler_) return fail(DIFFUSION_INTERNAL, "cannot start the backend scheduler");
  return {};
}

Executor::~Executor() {
  if (scheduler_) ggml_backend_sched_free(scheduler_);
  for (ggml_backend_t backend : backends_) ggml_backend_free(backend);
}

void Executor::set_threads(int n_threads) {
  if (cpu_) ggml_backend_cpu_set_n_threads(cpu_, n_threads);
}

bool Executor::fits_on_device(ggml_cgraph* graph) {
  if (!on_device_) return true;
  // Measured with an allocator of its own: the scheduler's would keep the measured layout as if
  // its buffers had been allocated for it.
  ggml_backend_t device = backends_.front();
  ggml_gallocr_t measure = ggml_gallocr_new(ggml_backend_get_default_buffer_type(device));
  size_t needed = 0;
  ggml_gallocr_reserve_n_size(measure, graph, nullptr, nullptr, &needed);
  ggml_gallocr_free(measure);
  size_t free = 0, total = 0;
  ggml_backend_dev_memory(ggml_backend_get_device(device), &free, &total);
  return needed <= free + ggml_backend_sched_get_buffer_size(scheduler_, device);
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
  if (executor_.allocated_ == graph_) executor_.allocated_ = nullptr;  // its address may recur
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

void GraphRun::set_input(ggml_tensor* t, std::vector<float> values) {
  for (auto& [input, current] : f32_inputs_) {
    if (input == t) current = std::move(values);
  }
}

ggml_cgraph* GraphRun::graph(ggml_tensor* output) {
  if (!graph_) {
    ggml_set_output(output);
    graph_ = ggml_new_graph_custom(ctx_, kMaxNodes, false);
    ggml_build_forward_expand(graph_, output);
  }
  return graph_;
}

Failure GraphRun::compute(ggml_tensor* output, std::vector<float>* out) {
  if (graph_ && !laid_out())
    return fail(DIFFUSION_INTERNAL, "a graph computed again after another");
  ggml_cgraph* graph = this->graph(output);
  if (!laid_out()) {
    executor_.allocated_ = nullptr;
    ggml_backend_sched_reset(executor_.scheduler_);
    if (!ggml_backend_sched_alloc_graph(executor_.scheduler_, graph)) {
      return fail(executor_.on_device_ ? DIFFUSION_OOM_VRAM : DIFFUSION_OOM_RAM,
                  "cannot allocate the compute buffer");
    }
    executor_.allocated_ = graph;
    ++executor_.allocations_;
  }
  for (auto& [t, values] : f32_inputs_)
    ggml_backend_tensor_set(t, values.data(), 0, ggml_nbytes(t));
  for (auto& [t, values] : i32_inputs_)
    ggml_backend_tensor_set(t, values.data(), 0, ggml_nbytes(t));
  const ggml_status status = ggml_backend_sched_graph_compute(executor_.scheduler_, graph);
  if (status == GGML_STATUS_ABORTED) return fail(DIFFUSION_CANCELLED, "cancelled");
  if (status != GGML_STATUS_SUCCESS) {
    executor_.allocated_ = nullptr;
    return fail(DIFFUSION_INTERNAL, "the computation failed");
  }
  out->resize(ggml_nelements(output));
  ggml_backend_tensor_get(output, out->data(), 0, ggml_nbytes(output));
  return {};
}

}  // namespace dcpp
