#include "audio/whisper_memory.h"

#include <algorithm>
#include <fstream>

namespace allm {

namespace fs = std::filesystem;

std::optional<WhisperShape> read_whisper_shape(const fs::path& bin_file) {
  std::ifstream in(bin_file, std::ios::binary);
  uint32_t magic = 0;
  int32_t fields[11];
  if (!in.read(reinterpret_cast<char*>(&magic), sizeof magic) || magic != 0x67676d6c ||
      !in.read(reinterpret_cast<char*>(fields), sizeof fields)) {
    return std::nullopt;
  }
  for (int32_t field : fields) {
    if (field < 0) return std::nullopt;
  }
  WhisperShape s;
  s.vocab = fields[0];
  s.audio_ctx = fields[1];
  s.audio_state = fields[2];
  s.audio_head = fields[3];
  s.audio_layers = fields[4];
  s.text_ctx = fields[5];
  s.text_state = fields[6];
  s.text_head = fields[7];
  s.text_layers = fields[8];
  s.mels = fields[9];
  s.ftype = fields[10];
  return s;
}

WhisperStateBytes whisper_state_bytes(const WhisperShape& s) {
  auto pad256 = [](uint64_t n) { return (n + 255) / 256 * 256; };
  const uint64_t cache_value = s.ftype == 0 ? 4 : 2;  // F32 models keep F32 caches, others F16
  // whisper_full's greedy best_of (5) decoders grow the self-attention cache to
  // pad256(text_ctx) x (5 + 2) cells; the cross-attention cache (and kv_pad) hold the encoder's
  // output.
  const uint64_t self_cells = 7 * pad256(s.text_ctx);
  const uint64_t cross_cells = pad256(s.audio_ctx);
  WhisperStateBytes out;
  out.caches = 2 * cache_value *
               (uint64_t(s.text_state) * s.text_layers * (self_cells + cross_cells) +
                uint64_t(s.audio_state) * cross_cells);
  // Logits of a whole window (kept by the state and produced by the decoder graph), the
  // convolution's columns over 2 x audio_ctx mel frames, an encoder layer's activations (with
  // its 4x MLP) and a full-window decoder batch.
  const uint64_t f32 = sizeof(float);
  out.buffers = 2 * f32 * s.vocab * s.text_ctx +
                f32 * 2 * s.audio_ctx * (3ull * s.mels + 2ull * s.audio_state) +
                f32 * s.audio_ctx * 12ull * s.audio_state + f32 * s.text_ctx * 12ull * s.text_state;
  return out;
}

MemoryEstimate estimate_whisper_model(const fs::path& bin_file, int jobs) {
  MemoryEstimate estimate;
  estimate.weights = file_size_or_zero(bin_file);
  estimate.gpu = GpuUse::FIRST_GPU;  // whisper.cpp's use_gpu, gpu_device 0
  const std::optional<WhisperShape> shape = read_whisper_shape(bin_file);
  if (!shape) return estimate;
  const uint64_t n = static_cast<uint64_t>(std::max(1, jobs));
  const WhisperStateBytes state = whisper_state_bytes(*shape);
  estimate.kv_cache = n * state.caches;
  estimate.compute = n * state.buffers;
  estimate.note = "for " + std::to_string(n) + " transcription" + (n == 1 ? "" : "s") +
                  " at once (--audio-parallel)";
  return estimate;
}

}  // namespace allm
