#include "context.h"

#include <cmath>
#include <thread>

#include "ggml-cpu.h"
#include "graph.h"

namespace stcpp {

Context::Context(const Model& model, const stcpp_context_params& params)
    : model_(model), params_(params) {}

Context::~Context() {
  graph_.reset();
  if (scheduler_) ggml_backend_sched_free(scheduler_);
  for (ggml_backend_t backend : backends_) ggml_backend_free(backend);
}

namespace {

// The most graph nodes a batch of `n_groups` token groups can need.
size_t max_graph_nodes(const ModelConfig& c, int n_groups) {
  return 2048 +
         static_cast<size_t>(c.num_hidden_layers) * (64 + 32 * static_cast<size_t>(n_groups));
}

}  // namespace

Failure Context::init() {
  const ModelConfig& c = model_.config;
  if (params_.n_ctx_per_seq < 1 || params_.n_seq_max < 1 || params_.n_batch < 1) {
    return fail(STCPP_INTERNAL, "context sizes must be positive");
  }
  const ggml_type type = params_.cache_type == STCPP_CACHE_F32 ? GGML_TYPE_F32 : GGML_TYPE_F16;
  const int64_t row = int64_t{c.head_dim} * c.num_key_value_heads;
  std::vector<ggml_backend_buffer_type_t> layer_buffer_type;
  for (int l = 0; l < c.num_hidden_layers; ++l)
    layer_buffer_type.push_back(model_.layer_buffer_type(l));
  if (Failure f = cache_.init(layer_buffer_type, row, row, params_.n_ctx_per_seq, params_.n_seq_max,
                              type)) {
    return f;
  }
  for (ggml_backend_dev_t device : model_.devices) {
    ggml_backend_t gpu = ggml_backend_dev_init(device, nullptr);
    if (!gpu) {
      return fail(STCPP_INTERNAL,
                  std::string("cannot start the device ") + ggml_backend_dev_name(device));
    }
    backends_.push_back(gpu);
  }
  ggml_backend_t cpu = ggml_backend_cpu_init();
  if (!cpu) return fail(STCPP_INTERNAL, "cannot start the CPU backend");
  backends_.push_back(cpu);
  const int threads = model_.n_threads > 0 ? model_.n_threads
                                           : static_cast<int>(std::thread::hardware_concurrency());
  ggml_backend_cpu_set_n_threads(cpu, std::max(1, threads));
  return fit_scheduler(max_graph_nodes(c, params_.n_seq_max));
}

// The scheduler's buffers grow with its graph size (tens of bytes of bookkeeping per possible
// node and split input), so it is sized for a group per sequence, as batches usually come, and
// made anew for a batch whose graph is larger.
Failure Context::fit_scheduler(size_t nodes) {
  if (scheduler_ && nodes <= scheduler_nodes_) return {};
  graph_.reset();  // allocated in the scheduler going away
  graph_shape_.clear();
  if (scheduler_) ggml_backend_sched_free(scheduler_);
  scheduler_ = ggml_backend_sched_new(backends_.data(), nullptr, static_cast<int>(backends_.size()),
                                      nodes, false, true);
  scheduler_nodes_ = nodes;
  if (!scheduler_) return fail(STCPP_INTERNAL, "cannot start the backend scheduler");
  return {};
}

// Checks the batch and splits it into groups of consecutive positions of one sequence; each
// group must continue its sequence (positions past the cached ones would see stale cells).
Failure Context::validate(const stcpp_batch& b, std::vector<TokenGroup>* groups) const {
  if (b.n_tokens < 1 || b.n_tokens > params_.n_batch) {
    return fail(STCPP_INTERNAL, "a batch holds 1 to " + std::to_string(params_.n_batch) +
                                    " tokens, got " + std::to_string(b.n_tokens));
  }
  std::vector<int> length(cache_.n_seq());
  for (int s = 0; s < cache_.n_seq(); ++s) length[s] = cache_.length(s);
  for (int i = 0; i < b.n_tokens; ++i) {
    const int seq = b.seq_ids[i], pos = b.positions[i];
    if (b.tokens[i] < 0 || b.tokens[i] >= model_.config.vocab_size) {
      return fail(STCPP_INTERNAL, "token id " + std::to_string(b.tokens[i]) + " is out of range");
    }
    if (seq < 0 || seq >= cache_.n_seq()) {
      return fail(STCPP_INTERNAL, "sequence id " + std::to_string(seq) + " is out of range");
    }
    if (pos < 0 || pos >= cache_.ctx_per_seq()) {
      return fail(STCPP_OOM_RAM, "position " + std::to_string(pos) + " is past the context of " +
                                     std::to_string(cache_.ctx_per_seq()) + " tokens");
    }
    TokenGroup* last = groups->empty() ? nullptr : &groups->back();
    if (last && last->seq == seq && last->pos0 + last->count == pos) {
      ++last->count;
    } else {
      if (pos > length[seq]) {
        return fail(STCPP_INTERNAL, "sequence " + std::to_string(seq) + " jumps to position " +
                                        std::to_string(pos) + " but holds " +
                                        std::to_string(length[seq]) + " tokens");
      }
      groups->push_back({seq, i, 1, pos});
    }
    length[seq] = pos + 1;
  }
  return {};
}

namespace {

// Causal attention of one group over cells [first, pos0 + count), limited to the last `window`
// positions when window > 0, in F16 as ggml_flash_attn_ext takes it; the padding cells after
// them are masked. A mask no layer reads was
// left out of the graph and has no buffer.
void fill_mask(ggml_tensor* tensor, const TokenGroup& g, int window, int first) {
  if (!tensor || !tensor->buffer) return;
  const int n_kv = static_cast<int>(tensor->ne[0]);
  std::vector<float> mask(static_cast<size_t>(n_kv) * g.count, -INFINITY);
  for (int i = 0; i < g.count; ++i) {
    const int pos = g.pos0 + i;
    for (int j = first; j <= pos; ++j) {
      if (window <= 0 || pos - j < window) mask[static_cast<size_t>(i) * n_kv + j - first] = 0.0f;
    }
  }
  std::vector<ggml_fp16_t> half(mask.size());
  ggml_fp32_to_fp16_row(mask.data(), half.data(), static_cast<int64_t>(mask.size()));
  ggml_backend_tensor_set(tensor, half.data(), 0, half.size() * sizeof(ggml_fp16_t));
}

}  // namespace

void Context::fill_masks(const std::vector<TokenGroup>& groups) const {
  for (const TokenGroup& g : groups) {
    fill_mask(g.mask, g, 0, 0);
    fill_mask(g.window_mask, g, model_.config.sliding_window, g.window_first);
  }
}

Failure Context::build_graph(std::vector<TokenGroup> groups, int n_tokens, int n_outputs,
                             size_t nodes) {
  graph_.reset();
  graph_shape_.clear();
  auto graph = std::make_unique<Graph>(model_, cache_, std::move(groups), n_tokens, n_outputs,
                                       nodes, params_.embeddings);
  ggml_tensor* out = model_.architecture->build(*graph);
  ggml_build_forward_expand(graph->cgraph(), out);
  ggml_backend_sched_reset(scheduler_);
  if (!ggml_backend_sched_alloc_graph(scheduler_, graph->cgraph())) {
    return fail(model_.devices.empty() ? STCPP_OOM_RAM : STCPP_OOM_VRAM,
                "cannot allocate the compute buffers for a batch of " + std::to_string(n_tokens) +
                    " tokens");
  }
  graph_ = std::move(graph);
  graph_output_ = out;
  return {};
}

Failure Context::decode(const stcpp_batch& b) {
  std::vector<TokenGroup> groups;
  if (Failure f = validate(b, &groups)) return f;
  std::vector<int32_t> output_ids;
  output_rows_.assign(b.n_tokens, -1);
  for (int i = 0; i < b.n_tokens; ++i) {
    if (b.logits[i]) {
      output_rows_[i] = static_cast<int>(output_ids.size());
      output_ids.push_back(i);
    }
  }
  if (output_ids.empty()) output_ids.push_back(b.n_tokens - 1);  // the graph needs one row
  const size_t nodes = max_graph_nodes(model_.config, static_cast<int>(groups.size()));
  if (Failure f = fit_scheduler(nodes)) return f;
  const int n_outputs = static_cast<int>(output_ids.size());
  const std::vector<int64_t> shape = graph_shape(
      groups, b.n_tokens, n_outputs, model_.config.sliding_window, cache_.ctx_per_seq());
  if (graph_ && shape == graph_shape_) {
    graph_->set_positions(groups);
  } else if (Failure f = build_graph(groups, b.n_tokens, n_outputs, nodes)) {
    return f;
  } else {
    graph_shape_ = shape;
  }
  Graph& graph = *graph_;
  ggml_backend_tensor_set(graph.tokens(), b.tokens, 0, b.n_tokens * sizeof(int32_t));
  ggml_backend_tensor_set(graph.positions(), b.positions, 0, b.n_tokens * sizeof(int32_t));
  ggml_backend_tensor_set(graph.output_ids(), output_ids.data(), 0,
                          output_ids.size() * sizeof(int32_t));
  std::vector<int64_t> cells(b.n_tokens);
  for (int i = 0; i < b.n_tokens; ++i) {
    cells[i] = int64_t{b.seq_ids[i]} * cache_.ctx_per_seq() + b.positions[i];
  }
  ggml_backend_tensor_set(graph.kv_cells(), cells.data(), 0, cells.size() * sizeof(int64_t));
  fill_masks(graph.groups());
  if (ggml_backend_sched_graph_compute(scheduler_, graph.cgraph()) != GGML_STATUS_SUCCESS) {
    graph_.reset();
    graph_shape_.clear();
    return fail(STCPP_INTERNAL, "the compute graph failed");
  }
  outputs_.resize(ggml_nelements(graph_output_));
  ggml_backend_tensor_get(graph_output_, outputs_.data(), 0, outputs_.size() * sizeof(float));
  for (const TokenGroup& g : groups) cache_.set_length(g.seq, g.pos0 + g.count);
  return {};
}

const float* Context::output(int batch_index) const {
  if (batch_index < 0 || batch_index >= static_cast<int>(output_rows_.size()) ||
      output_rows_[batch_index] < 0) {
    return nullptr;
  }
  const ModelConfig& c = model_.config;
  const size_t width = params_.embeddings ? c.hidden_size : c.vocab_size;
  return outputs_.data() + static_cast<size_t>(output_rows_[batch_index]) * width;
}

size_t Context::bytes() const {
  size_t total = cache_.bytes();
  for (ggml_backend_t backend : backends_) {
    total += ggml_backend_sched_get_buffer_size(scheduler_, backend);
  }
  return total;
}

}  // namespace stcpp
