// Runs one ggml graph through ggml's backend scheduler, on the model's GPU (when it has one) and
// the CPU: inputs set after allocation, the output read back, an abort callback polled inside
// the CPU's part of the computation.
#pragma once

#include <functional>
#include <vector>

#include "ggml-backend.h"
#include "ggml.h"
#include "status.h"

namespace dcpp {

class Executor {
 public:
  Executor() = default;
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Starts the backends: `device` (null: none) first, then the CPU.
  Failure start(ggml_backend_dev_t device);

  void set_threads(int n_threads);
  // Whether graphs run on a device (a GPU, an RPC worker) rather than the CPU alone.
  bool on_device() const { return on_device_; }
  // Whether the graph's compute buffer, were the whole graph on the device, fits in what the
  // device has free (with the buffer the scheduler holds now, which a larger one replaces); always
  // true on the CPU.
  bool fits_on_device(ggml_cgraph* graph);
  // Polled from inside the computation; true aborts it (the run then fails CANCELLED).
  void set_abort(std::function<bool()> should_abort) { should_abort_ = std::move(should_abort); }
  // How many times a graph was laid out in the scheduler's buffers (tests of graph reuse).
  int allocations() const { return allocations_; }

 private:
  friend class GraphRun;
  static bool abort_trampoline(void* self);

  std::vector<ggml_backend_t> backends_;
  ggml_backend_t cpu_ = nullptr;
  ggml_backend_sched_t scheduler_ = nullptr;
  // The graph the scheduler's buffers are laid out for now: computing it again needs no new
  // allocation (the UNet's graph, step after step).
  const ggml_cgraph* allocated_ = nullptr;
  int allocations_ = 0;
  bool on_device_ = false;
  std::function<bool()> should_abort_;
};

// One graph: build it on ctx(), register inputs, then compute(). While no other graph has run
// since (laid_out()), it may be computed again with new input values (set_input), nothing
// rebuilt or reallocated; after that, it must be built anew (its tensors still point into the
// buffers as they were).
class GraphRun {
 public:
  explicit GraphRun(Executor& executor);
  ~GraphRun();

  ggml_context* ctx() { return ctx_; }
  ggml_tensor* input_f32(std::vector<float> values, int64_t ne0, int64_t ne1 = 1, int64_t ne2 = 1,
                         int64_t ne3 = 1);
  ggml_tensor* input_i32(std::vector<int32_t> values);
  bool fits_on_device(ggml_tensor* output) { return executor_.fits_on_device(graph(output)); }
  bool laid_out() const { return graph_ && executor_.allocated_ == graph_; }
  // Replaces the values of input `t` (same size) for the next compute().
  void set_input(ggml_tensor* t, std::vector<float> values);
  Failure compute(ggml_tensor* output, std::vector<float>* out);

 private:
  ggml_cgraph* graph(ggml_tensor* output);  // built on first use

  Executor& executor_;
  ggml_context* ctx_;
  ggml_cgraph* graph_ = nullptr;
  std::vector<std::pair<ggml_tensor*, std::vector<float>>> f32_inputs_;
  std::vector<std::pair<ggml_tensor*, std::vector<int32_t>>> i32_inputs_;
};

}  // namespace dcpp
