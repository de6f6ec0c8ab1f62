// diffusion.cpp: Stable Diffusion 1.x / 2.x / SDXL base text-to-image on ggml. Loads single-file
// checkpoints as published (model.diffusion_model.*, first_stage_model.*, cond_stage_model.* or
// SDXL's conditioner.embedders.*) and diffusers folders (model_index.json, unet/, vae/,
// text_encoder/, tokenizer/, scheduler/; SDXL: text_encoder_2/, tokenizer_2/),
// F32, F16 or BF16, with the architecture inferred from tensor names and shapes. C API with
// opaque handles.
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct diffusion_model diffusion_model;

// Failure codes; the numbers are aLLM's spec codes.
typedef enum {
  DIFFUSION_OK = 0,
  DIFFUSION_OOM_VRAM = 1,
  DIFFUSION_OOM_RAM = 2,
  DIFFUSION_MODEL_CORRUPT = 3,
  DIFFUSION_CANCELLED = 5,
  DIFFUSION_UNSUPPORTED = 6,
  DIFFUSION_INTERNAL = 7,
  DIFFUSION_INVALID_ARGUMENT = 8,
  DIFFUSION_LOAD_FAILED = 9,
} diffusion_status;

typedef enum {
  DIFFUSION_SAMPLER_EULER_A = 0,  // the default
  DIFFUSION_SAMPLER_EULER = 1,
  DIFFUSION_SAMPLER_DPMPP_2M = 2,  // with Karras sigmas
  DIFFUSION_SAMPLER_DDIM = 3,
} diffusion_sampler;

// What the UNet predicts: the noise (SD 1.x, SD 2.x 512) or v (SD 2.x 768-v).
typedef enum {
  // diffusers: scheduler_config.json's prediction_type. Single file: a <name>.yaml beside it
  // with parameterization "v" (the original v2-inference-v.yaml); else, for SD 2.x, the probe
  // stable-diffusion.cpp and AUTOMATIC1111 use (one UNet call on a constant input: v when the
  // mean of output - input is below -1); SD 1.x: eps.
  DIFFUSION_PREDICTION_AUTO = 0,
  DIFFUSION_PREDICTION_EPS = 1,
  DIFFUSION_PREDICTION_V = 2,
} diffusion_prediction;

// Decoding the latent in tiles: for images whose whole decode does not fit in the device's memory
// (the VAE's activations at full resolution and its mid-block attention over every latent pixel
// grow with the image's area and its square). Tiles overlap by a quarter of a tile side and are
// blended with linear ramps across the overlaps; the image differs slightly from a whole decode.
typedef enum {
  // On a GPU: tiles when the whole decode's compute buffer exceeds the device's free memory. On
  // the CPU: never (system memory is larger, and swapping is the user's choice).
  DIFFUSION_VAE_TILING_AUTO = 0,
  DIFFUSION_VAE_TILING_OFF = 1,
  DIFFUSION_VAE_TILING_ON = 2,  // whenever the latent is larger than a tile
} diffusion_vae_tiling;

// How the UNet's attention is computed. Flash attention never stores the score matrix and is the
// faster kernel on GPUs; on the CPU, the score matrix and two matrix products are faster (SD 1.5
// at 512x512, 2 threads: 16.2 s per guided step against 21.4 s). The score matrix is used only
// while it takes at most 1.5 GiB (larger ones use flash attention whatever the choice).
typedef enum {
  DIFFUSION_ATTENTION_AUTO = 0,  // the score matrix on the CPU, flash attention on a device
  DIFFUSION_ATTENTION_FLASH = 1,
  DIFFUSION_ATTENTION_SCORE_MATRIX = 2,
} diffusion_attention;

typedef struct {
  int32_t n_threads;           // compute threads; <= 0: all cores
  const char* tokenizer_path;  // folder with vocab.json + merges.txt; NULL: found beside the model
  diffusion_prediction prediction;
  // The ggml GPU for the networks (weights and computation), by ggml's name ("CUDA0",
  // "Vulkan0", ...; of a comma-separated list, the first); NULL or "": the first GPU ggml
  // reports, else the CPU; "none": the CPU.
  const char* device;
  diffusion_vae_tiling vae_tiling;
  // Tile side in latent pixels (SD: 8 image pixels each); tiles start every 3/4 of a side, the
  // last ending at the latent's edge. <= 0: 64 (512 image pixels, what SD 1.x was trained at).
  int32_t vae_tile_size;
  diffusion_attention attention;
} diffusion_model_params;

// Called after every sampling step; returning false cancels the generation.
typedef bool (*diffusion_progress_fn)(int32_t step, int32_t steps, void* user_data);
// Polled while a step computes; returning true aborts it (cancellation, time limits).
typedef bool (*diffusion_abort_fn)(void* user_data);

typedef struct {
  const char* prompt;
  const char* negative_prompt;  // NULL or "": the empty prompt
  int32_t width;                // pixels, a multiple of 8
  int32_t height;
  int32_t steps;
  float cfg_scale;  // classifier-free guidance; <= 1 evaluates the prompt alone
  uint64_t seed;
  diffusion_sampler sampler;
  // 1 or 0: the text encoder layer the model was trained on (the last; SD 2.x: the penultimate,
  // which is the last in diffusers folders); 2: the one before, ...
  int32_t clip_skip;
  int32_t n_threads;  // <= 0: the model's
  // Image to image (NULL: text to image): the starting image, width * height * 3 bytes of RGB,
  // rows top to bottom. Needs a checkpoint with a VAE encoder.
  const uint8_t* init_image;
  // With init_image: the share of the sampling schedule that runs, from the noise level it
  // reaches (as diffusers: the last floor(steps * strength) steps). 0: the image through the VAE
  // alone; 1: from pure noise.
  float strength;
  // Inpainting, with init_image (NULL: repaint everything): width * height bytes, nonzero =
  // repaint, 0 = keep. A latent pixel is repainted when any of its image pixels is; the others
  // are the image's latent at every step and exactly in the result. An inpainting checkpoint
  // (a UNet with 9 input channels) also sees the mask and the kept part of the image.
  const uint8_t* mask;
  diffusion_progress_fn progress;
  diffusion_abort_fn should_abort;
  void* user_data;
} diffusion_generate_params;

diffusion_model_params diffusion_model_default_params(void);
diffusion_generate_params diffusion_generate_default_params(void);

// `path`: a single-file .safetensors checkpoint or a diffusers folder. On failure returns NULL,
// sets *status and writes a message naming the problem into `message`.
diffusion_model* diffusion_model_load(const char* path, diffusion_model_params params,
                                      diffusion_status* status, char* message, size_t message_size);
void diffusion_model_free(diffusion_model* model);

// "sd1", "sd2", "sdxl"
const char* diffusion_model_architecture(const diffusion_model* model);
const char* diffusion_model_device(const diffusion_model* model);    // its GPU's name, or "CPU"
int32_t diffusion_model_default_size(const diffusion_model* model);  // 512, 768 or 1024 (SDXL)
diffusion_prediction diffusion_model_prediction(const diffusion_model* model);  // EPS or V
size_t diffusion_model_size_bytes(const diffusion_model* model);
// True for an inpainting checkpoint (its UNet also takes the mask and the masked image).
bool diffusion_model_is_inpainting(const diffusion_model* model);
// True when the checkpoint has a VAE encoder (needed for image to image).
bool diffusion_model_can_encode(const diffusion_model* model);
const char* diffusion_sampler_name(diffusion_sampler sampler);
// Parses "euler_a", "euler", "dpm++2m", "ddim"; false when unknown.
bool diffusion_sampler_from_name(const char* name, diffusion_sampler* sampler);

// Generates one image into `rgb` (width * height * 3 bytes, rows top to bottom).
diffusion_status diffusion_generate(diffusion_model* model, const diffusion_generate_params* params,
                                    uint8_t* rgb, char* message, size_t message_size);

// Encodes 8-bit RGB as PNG. Returns a malloc'ed buffer (free with diffusion_free) and its size
// in *size; NULL on failure.
uint8_t* diffusion_png_encode(const uint8_t* rgb, int32_t width, int32_t height, size_t* size);
void diffusion_free(void* buffer);

// --- The components one at a time (reference checks, tools). Float tensors are row-major in
// PyTorch's order (NCHW for images).

// CLIP token ids for `text`: start, tokens, end, padded to the context length (77). Returns the
// number written, or minus the number needed when max_tokens is too small.
int32_t diffusion_tokenize(const diffusion_model* model, const char* text, int32_t* tokens,
                           int32_t max_tokens);
int32_t diffusion_text_context_length(const diffusion_model* model);  // 77
// The UNet's context width: 768 (SD 1.x), 1024 (SD 2.x), 2048 (SDXL: both encoders' side by side).
int32_t diffusion_text_embedding_dim(const diffusion_model* model);
// The pooled text's width in SDXL's added conditioning (1280); 0 for SD 1.x / 2.x.
int32_t diffusion_text_pooled_dim(const diffusion_model* model);
int32_t diffusion_latent_channels(const diffusion_model* model);  // 4
float diffusion_vae_scale_factor(const diffusion_model* model);   // 0.18215
// The text encoder's output for `n_tokens` ids: [n_tokens, embedding_dim] into `out`. clip_skip
// as in diffusion_generate_params (always with the final layer norm). SD 1.x / 2.x only (SDXL's
// two encoders read two tokenizations: UNSUPPORTED; see diffusion_encode_prompt).
diffusion_status diffusion_encode_tokens(diffusion_model* model, const int32_t* tokens,
                                         int32_t n_tokens, int32_t clip_skip, float* out);
// What a generation conditions on for `text`: the context [context_length, embedding_dim] into
// `context` and, for SDXL, the pooled text [pooled_dim] into `pooled` (may be NULL otherwise).
diffusion_status diffusion_encode_prompt(diffusion_model* model, const char* text,
                                         int32_t clip_skip, float* context, float* pooled);
// One UNet evaluation: latent x [C, H, W] at timestep t with context [n_ctx, dim]; the
// prediction [C, H, W] into `out`.
diffusion_status diffusion_unet_eval(diffusion_model* model, const float* x, int32_t latent_w,
                                     int32_t latent_h, float timestep, const float* context,
                                     int32_t n_ctx, float* out);
// SDXL's UNet evaluation: as diffusion_unet_eval with the added conditioning, the pooled text
// [pooled_dim] and `sizes` (original height, width, crop top, left, target height, width).
diffusion_status diffusion_unet_eval_sdxl(diffusion_model* model, const float* x, int32_t latent_w,
                                          int32_t latent_h, float timestep, const float* context,
                                          int32_t n_ctx, const float* pooled, const float sizes[6],
                                          float* out);
// The VAE decoder on an (unscaled) latent [C, H, W]: the image [3, 8H, 8W] in [-1, 1].
diffusion_status diffusion_vae_decode(diffusion_model* model, const float* latent, int32_t latent_w,
                                      int32_t latent_h, float* out);
// The VAE encoder on an image [3, 8H, 8W] in [-1, 1]: the mean of the latent distribution times
// the scale factor [C, H, W] (what sampling starts from in image-to-image). UNSUPPORTED when the
// checkpoint has no encoder.
diffusion_status diffusion_vae_encode(diffusion_model* model, const float* image, int32_t latent_w,
                                      int32_t latent_h, float* out);

#ifdef __cplusplus
}
#endif
