// The UNet's two attention kernels (flash attention, and the stored score matrix the CPU runs
// faster) against a direct double-precision computation, the size bound on the score matrix, and
// whole generations with either kernel.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "demo/tiny_sd.h"
#include "diffusion.h"
#include "ggml-cpu.h"
#include "nn.h"

namespace {

using dcpp::AttentionKernel;

struct Sizes {
  int64_t dim, tq, tk, n;
  int heads;
};

std::vector<float> random_values(size_t count, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> v(count);
  for (float& x : v) x = normal(rng);
  return v;
}

// softmax(q_h k_h^T / sqrt(d)) v_h per head h and batch item, in double.
std::vector<float> reference_attention(const Sizes& s, const std::vector<float>& q,
                                       const std::vector<float>& k, const std::vector<float>& v) {
  const int64_t d = s.dim / s.heads;
  std::vector<float> out(static_cast<size_t>(s.dim * s.tq * s.n));
  for (int64_t b = 0; b < s.n; ++b) {
    for (int h = 0; h < s.heads; ++h) {
      for (int64_t i = 0; i < s.tq; ++i) {
        const float* qi = &q[static_cast<size_t>((b * s.tq + i) * s.dim + h * d)];
        std::vector<double> w(static_cast<size_t>(s.tk));
        double largest = -INFINITY, sum = 0;
        for (int64_t j = 0; j < s.tk; ++j) {
          const float* kj = &k[static_cast<size_t>((b * s.tk + j) * s.dim + h * d)];
          double dot = 0;
          for (int64_t c = 0; c < d; ++c) dot += static_cast<double>(qi[c]) * kj[c];
          w[j] = dot / std::sqrt(static_cast<double>(d));
          largest = std::max(largest, w[j]);
        }
        for (double& x : w) sum += (x = std::exp(x - largest));
        for (int64_t c = 0; c < d; ++c) {
          double acc = 0;
          for (int64_t j = 0; j < s.tk; ++j) {
            acc += w[j] * v[static_cast<size_t>((b * s.tk + j) * s.dim + h * d + c)];
          }
          out[static_cast<size_t>((b * s.tq + i) * s.dim + h * d + c)] =
              static_cast<float>(acc / sum);
        }
      }
    }
  }
  return out;
}

std::vector<float> ggml_attention(const Sizes& s, const std::vector<float>& q,
                                  const std::vector<float>& k, const std::vector<float>& v,
                                  AttentionKernel kernel) {
  ggml_init_params params{64 * 1024 * 1024, nullptr, false};
  ggml_context* ctx = ggml_init(params);
  auto tensor = [&](const std::vector<float>& values, int64_t t) {
    ggml_tensor* x = ggml_new_tensor_3d(ctx, GGML_TYPE_F32, s.dim, t, s.n);
    std::copy(values.begin(), values.end(), static_cast<float*>(x->data));
    return x;
  };
  ggml_tensor* out =
      dcpp::attention(ctx, tensor(q, s.tq), tensor(k, s.tk), tensor(v, s.tk), s.heads, kernel);
  ggml_cgraph* graph = ggml_new_graph(ctx);
  ggml_build_forward_expand(graph, out);
  EXPECT_EQ(ggml_graph_compute_with_ctx(ctx, graph, 2), GGML_STATUS_SUCCESS);
  const float* data = static_cast<const float*>(out->data);
  std::vector<float> result(data, data + ggml_nelements(out));
  ggml_free(ctx);
  return result;
}

TEST(UnetAttention, BothKernelsMatchADirectComputation) {
  std::mt19937 rng(11);
  // Self-attention (Tk = Tq) and cross-attention over a text context (Tk = 77), two heads or
  // eight, a batch of two (classifier-free guidance).
  for (const Sizes& s : {Sizes{32, 64, 64, 2, 2}, Sizes{64, 48, 77, 2, 8}, Sizes{40, 7, 5, 1, 1}}) {
    const std::vector<float> q = random_values(static_cast<size_t>(s.dim * s.tq * s.n), rng);
    const std::vector<float> k = random_values(static_cast<size_t>(s.dim * s.tk * s.n), rng);
    const std::vector<float> v = random_values(static_cast<size_t>(s.dim * s.tk * s.n), rng);
    const std::vector<float> expected = reference_attention(s, q, k, v);
    for (AttentionKernel kernel :
         {AttentionKernel::flash, AttentionKernel::score_matrix_when_small}) {
      const std::vector<float> got = ggml_attention(s, q, k, v, kernel);
      ASSERT_EQ(got.size(), expected.size());
      double largest = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        largest = std::max(largest, static_cast<double>(std::fabs(got[i] - expected[i])));
      }
      EXPECT_LE(largest, 1e-5) << "kernel " << static_cast<int>(kernel) << " dim " << s.dim
                               << " tq " << s.tq << " tk " << s.tk << " heads " << s.heads;
    }
  }
}

TEST(UnetAttention, TheScoreMatrixIsUsedOnlyWhileSmall) {
  using dcpp::uses_score_matrix;
  const AttentionKernel cpu = AttentionKernel::score_matrix_when_small;
  // SD 1.5 at 512x512: 4096 latent pixels, 8 heads, a guided batch of 2 (1 GiB).
  EXPECT_TRUE(uses_score_matrix(cpu, 4096, 4096, 8, 2));
  // SDXL at 1024x1024: its first attention level has 4096 tokens, 10 heads (1.25 GiB).
  EXPECT_TRUE(uses_score_matrix(cpu, 4096, 4096, 10, 2));
  // SD 1.5 at 1024x1024: 16384 tokens (16 GiB) goes to flash attention.
  EXPECT_FALSE(uses_score_matrix(cpu, 16384, 16384, 8, 2));
  EXPECT_FALSE(uses_score_matrix(AttentionKernel::flash, 64, 64, 1, 1));
}

// The tiny checkpoint with each kernel: UNet predictions within float rounding of each other but
// not equal (the choice reaches the UNet), and the same generated picture within a few levels.
TEST(UnetAttention, TheChoiceReachesTheUnetAndBothGiveTheSamePicture) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / "allm-diffusion-attention";
  fs::remove_all(dir);
  std::string problem;
  ASSERT_TRUE(allm::write_tiny_sd(dir.string(), allm::TinySdSpec{}, &problem)) << problem;
  std::vector<std::vector<float>> predictions;
  std::vector<std::vector<uint8_t>> images;
  for (diffusion_attention choice : {DIFFUSION_ATTENTION_FLASH, DIFFUSION_ATTENTION_AUTO}) {
    diffusion_model_params params = diffusion_model_default_params();
    params.n_threads = 2;
    params.device = "none";
    params.attention = choice;
    char message[256];
    diffusion_status status;
    diffusion_model* model = diffusion_model_load((dir / "model.safetensors").c_str(), params,
                                                  &status, message, sizeof message);
    ASSERT_NE(model, nullptr) << message;
    const int n_ctx = diffusion_text_context_length(model);
    std::vector<float> context(static_cast<size_t>(n_ctx) * diffusion_text_embedding_dim(model));
    ASSERT_EQ(diffusion_encode_prompt(model, "a photo of the cat", 0, context.data(), nullptr),
              DIFFUSION_OK);
    const int w = 8, h = 6;
    std::vector<float> x(static_cast<size_t>(4) * w * h), prediction(x.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * i);
    EXPECT_EQ(diffusion_unet_eval(model, x.data(), w, h, 500.0f, context.data(), n_ctx,
                                  prediction.data()),
              DIFFUSION_OK);
    predictions.push_back(std::move(prediction));
    diffusion_generate_params p = diffusion_generate_default_params();
    p.prompt = "a photo of the cat";
    p.width = 32;
    p.height = 24;
    p.steps = 2;
    p.seed = 7;
    std::vector<uint8_t> rgb(p.width * p.height * 3);
    EXPECT_EQ(diffusion_generate(model, &p, rgb.data(), message, sizeof message), DIFFUSION_OK)
        << message;
    images.push_back(std::move(rgb));
    diffusion_model_free(model);
  }
  double largest = 0, scale = 0;
  for (size_t i = 0; i < predictions[0].size(); ++i) {
    largest =
        std::max(largest, static_cast<double>(std::fabs(predictions[0][i] - predictions[1][i])));
    scale = std::max(scale, static_cast<double>(std::fabs(predictions[0][i])));
  }
  EXPECT_GT(largest, 0.0);
  EXPECT_LE(largest, 1e-4 * scale);
  int level = 0;
  for (size_t i = 0; i < images[0].size(); ++i) {
    level = std::max(level, std::abs(images[0][i] - images[1][i]));
  }
  EXPECT_LE(level, 2);
  fs::remove_all(dir);
}

}  // namespace
