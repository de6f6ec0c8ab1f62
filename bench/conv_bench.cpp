// allm-bench-conv [--threads N] [--pairs N]: diffusion.cpp's 3x3 convolution (ggml_im2col into
// columns of the kernel's type, then one matrix product) against ggml's direct convolution
// (ggml_conv_2d_direct: the CPU backend's tiled im2col + GEMM, which never holds all columns) on
// the CPU, at the shapes SD 1.5's UNet (guided batch of 2 at 512x512) and VAE decoder run, F16
// kernels as published checkpoints. Prints milliseconds per convolution as min / median / max of
// alternating pairs, and the direct / ours ratio of the medians (above 1: ours is faster).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "ggml-cpu.h"
#include "ggml.h"
#include "nn.h"

namespace {

struct Shape {
  const char* where;
  int64_t side, in_channels, out_channels, batch;
};

double run_ms(const Shape& s, bool direct, int threads) {
  const size_t columns = static_cast<size_t>(s.side * s.side * s.batch * s.in_channels * 9);
  const size_t activations = static_cast<size_t>(s.side * s.side * s.batch) *
                             static_cast<size_t>(s.in_channels + 2 * s.out_channels);
  ggml_init_params params{columns * 2 + activations * 4 + (64u << 20), nullptr, false};
  ggml_context* ctx = ggml_init(params);
  dcpp::Conv conv;
  conv.w = ggml_new_tensor_4d(ctx, GGML_TYPE_F16, 3, 3, s.in_channels, s.out_channels);
  conv.b = nullptr;
  ggml_tensor* x = ggml_new_tensor_4d(ctx, GGML_TYPE_F32, s.side, s.side, s.in_channels, s.batch);
  auto* w = static_cast<ggml_fp16_t*>(conv.w->data);
  for (int64_t i = 0; i < ggml_nelements(conv.w); ++i) w[i] = ggml_fp32_to_fp16((i % 7) * 0.01f);
  auto* xv = static_cast<float*>(x->data);
  for (int64_t i = 0; i < ggml_nelements(x); ++i) xv[i] = (i % 13) * 0.1f;
  ggml_tensor* y =
      direct ? ggml_conv_2d_direct(ctx, conv.w, x, 1, 1, 1, 1, 1, 1) : dcpp::conv2d(ctx, x, conv);
  ggml_cgraph* graph = ggml_new_graph(ctx);
  ggml_build_forward_expand(graph, y);
  // The pipeline computes in buffers laid out once and reused: time a second run, its pages
  // (the columns' among them) already touched.
  ggml_graph_compute_with_ctx(ctx, graph, threads);
  const auto start = std::chrono::steady_clock::now();
  ggml_graph_compute_with_ctx(ctx, graph, threads);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  ggml_free(ctx);
  return ms;
}

struct Summary {
  double min, median, max;
};

Summary summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return {v.front(), v[v.size() / 2], v.back()};
}

}  // namespace

int main(int argc, char** argv) {
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int pairs = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--pairs")) pairs = std::atoi(argv[i + 1]);
  }
  const Shape shapes[] = {
      {"UNet level 1", 64, 320, 320, 2},   {"UNet level 2", 32, 640, 640, 2},
      {"UNet level 3", 16, 1280, 1280, 2}, {"VAE 128x128", 128, 512, 512, 1},
      {"VAE 512x512", 512, 128, 128, 1},
  };
  std::printf("3x3 convolutions, F16 kernels, %d threads, %d pairs: ms min / median / max\n",
              threads, pairs);
  for (const Shape& s : shapes) {
    std::vector<double> ours, direct;
    for (int p = 0; p < pairs; ++p) {
      for (bool d : p % 2 ? std::vector<bool>{true, false} : std::vector<bool>{false, true}) {
        (d ? direct : ours).push_back(run_ms(s, d, threads));
      }
    }
    const Summary a = summarize(ours), b = summarize(direct);
    std::printf(
        "%-13s %4lldx%-4lld %4lld->%-4lld x%lld  im2col+mul_mat %8.1f / %8.1f / %8.1f   "
        "direct %8.1f / %8.1f / %8.1f   direct/ours %.2f\n",
        s.where, static_cast<long long>(s.side), static_cast<long long>(s.side),
        static_cast<long long>(s.in_channels), static_cast<long long>(s.out_channels),
        static_cast<long long>(s.batch), a.min, a.median, a.max, b.min, b.median, b.max,
        b.median / a.median);
  }
  return 0;
}
