// allm-sd-probe: runs diffusion.cpp's components one at a time on given inputs and writes the
// outputs as raw little-endian float32/int32 files, for the NumPy reference check
// (tests/reference/sd_reference.py).
//   allm-sd-probe MODEL OUT_DIR PROMPT LATENT_W LATENT_H TIMESTEP
// reads OUT_DIR/unet_x.f32 [C,H,W], OUT_DIR/context.f32 [77,D], OUT_DIR/vae_z.f32 [C,H,W],
// OUT_DIR/vae_img.f32 [3,8H,8W] and, for SDXL, OUT_DIR/unet_pooled.f32 [P] and unet_sizes.f32
// [6]; writes tokens.i32, text.f32 (the context), text_skip2.f32, unet.f32, vae.f32,
// vae_enc.f32 and, for SDXL, pooled.f32.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "diffusion.h"

namespace {

template <typename T>
bool read_file(const std::string& path, std::vector<T>* out, size_t count) {
  std::ifstream f(path, std::ios::binary);
  out->resize(count);
  return f.read(reinterpret_cast<char*>(out->data()), count * sizeof(T)).gcount() ==
         static_cast<std::streamsize>(count * sizeof(T));
}

template <typename T>
void write_file(const std::string& path, const std::vector<T>& v) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

int fail(const char* what) {
  std::fprintf(stderr, "allm-sd-probe: %s\n", what);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) return fail("usage: MODEL OUT_DIR PROMPT LATENT_W LATENT_H TIMESTEP");
  const std::string dir = argv[2];
  const int w = std::atoi(argv[4]), h = std::atoi(argv[5]);
  const float timestep = static_cast<float>(std::atof(argv[6]));
  char message[512];
  diffusion_status status;
  diffusion_model* model = diffusion_model_load(argv[1], diffusion_model_default_params(), &status,
                                                message, sizeof message);
  if (!model) return fail(message);
  const int ctx = diffusion_text_context_length(model), dim = diffusion_text_embedding_dim(model);
  const int c = diffusion_latent_channels(model);

  std::vector<int32_t> tokens(ctx);
  if (diffusion_tokenize(model, argv[3], tokens.data(), ctx) != ctx) return fail("tokenize");
  write_file(dir + "/tokens.i32", tokens);
  const size_t pooled_dim = static_cast<size_t>(diffusion_text_pooled_dim(model));
  std::vector<float> text(static_cast<size_t>(ctx) * dim), pooled(pooled_dim);
  for (int skip : {1, 2}) {
    if (diffusion_encode_prompt(model, argv[3], skip, text.data(), pooled.data()) != DIFFUSION_OK) {
      return fail("encode");
    }
    write_file(dir + (skip == 1 ? "/text.f32" : "/text_skip2.f32"), text);
  }
  if (pooled_dim > 0) write_file(dir + "/pooled.f32", pooled);
  std::vector<float> x, context, z, img, unet_pooled, sizes;
  const size_t latent = static_cast<size_t>(c) * w * h;
  if (!read_file(dir + "/unet_x.f32", &x, latent) ||
      !read_file(dir + "/context.f32", &context, static_cast<size_t>(ctx) * dim) ||
      !read_file(dir + "/vae_z.f32", &z, latent) ||
      !read_file(dir + "/vae_img.f32", &img, static_cast<size_t>(3) * 64 * w * h) ||
      (pooled_dim > 0 && (!read_file(dir + "/unet_pooled.f32", &unet_pooled, pooled_dim) ||
                          !read_file(dir + "/unet_sizes.f32", &sizes, 6)))) {
    return fail("cannot read the inputs");
  }
  std::vector<float> out(latent);
  if (diffusion_unet_eval_sdxl(model, x.data(), w, h, timestep, context.data(), ctx,
                               pooled_dim > 0 ? unet_pooled.data() : nullptr,
                               pooled_dim > 0 ? sizes.data() : nullptr,
                               out.data()) != DIFFUSION_OK) {
    return fail("unet");
  }
  write_file(dir + "/unet.f32", out);
  std::vector<float> image(static_cast<size_t>(3) * 64 * w * h);
  if (diffusion_vae_decode(model, z.data(), w, h, image.data()) != DIFFUSION_OK) return fail("vae");
  write_file(dir + "/vae.f32", image);
  if (diffusion_vae_encode(model, img.data(), w, h, out.data()) != DIFFUSION_OK) {
    return fail("vae encode");
  }
  write_file(dir + "/vae_enc.f32", out);
  diffusion_model_free(model);
  return 0;
}
