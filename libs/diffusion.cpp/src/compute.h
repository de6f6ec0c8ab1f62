// Runs one ggml graph on the CPU backend: inputs set after allocation, the output read back,
// an abort callback polled inside the computation.
#pragma once

#include <functional>
#include <vector>

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml.h"
#include "status.h"

namespace dcpp {

class Executor {
 public:
  Executor();
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  void set_threads(int n_threads);
  // Polled from inside the computation; true aborts it (the run then fails CANCELLED).
  void set_abort(std::function<bool()> should_abort) { should_abort_ = std::move(should_abort); }

 private:
  friend class GraphRun;
  static bool abort_trampoline(void* self);

  ggml_backend_t backend_;
  ggml_gallocr_t allocator_;
  std::function<bool()> should_abort_;
};

// One graph: build it on ctx(), register inputs, then compute() once.
class GraphRun {
 public:
  explicit GraphRun(Executor& executor);
  ~GraphRun();

  ggml_context* ctx() { return ctx_; }
  ggml_tensor* input_f32(std::vector<float> values, int64_t ne0, int64_t ne1 = 1, int64_t ne2 = 1,
                         int64_t ne3 = 1);
  ggml_tensor* input_i32(std::vector<int32_t> values);
  Failure compute(ggml_tensor* output, std::vector<float>* out);

 private:
  Executor& executor_;
  ggml_context* ctx_;
  std::vector<std::pair<ggml_tensor*, std::vector<float>>> f32_inputs_;
  std::vector<std::pair<ggml_tensor*, std::vector<int32_t>>> i32_inputs_;
};

}  // namespace dcpp
