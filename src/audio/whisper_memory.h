// What loading a whisper model will need: its ggml `.bin` file plus the states of the
// transcriptions that run at once, sized by the hyperparameters in the file's header.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

#include "base/memory_estimate.h"

namespace allm {

// A whisper ggml `.bin` file's hyperparameters (the header after the magic).
struct WhisperShape {
  int vocab = 0, audio_ctx = 0, audio_state = 0, audio_head = 0, audio_layers = 0;
  int text_ctx = 0, text_state = 0, text_head = 0, text_layers = 0, mels = 0, ftype = 0;
};
std::optional<WhisperShape> read_whisper_shape(const std::filesystem::path& bin_file);

// whisper.cpp: the weights plus, per transcription running at once (each in a whisper state of
// its own), the self-attention KV cache as large as best_of decoders make it, the
// cross-attention cache, the logits and the compute buffers (conv, encoder, decoder).
struct WhisperStateBytes {
  uint64_t caches = 0;   // self- and cross-attention KV caches
  uint64_t buffers = 0;  // logits and compute buffers
};
WhisperStateBytes whisper_state_bytes(const WhisperShape& shape);
MemoryEstimate estimate_whisper_model(const std::filesystem::path& bin_file, int jobs);

}  // namespace allm
