// Writes whisper models with random weights in whisper.cpp's ggml `.bin` format: the demo
// audio model, the test fixture and (with whisper "tiny" dimensions) the benchmark model.
// The output is gibberish; the file layout, shapes and run time are those of a real model.
#pragma once

#include <cstdint>
#include <string>

namespace allm {

struct TinyWhisperSpec {
  int n_vocab = 51865;     // whisper's multilingual vocabulary: language detection and translate
  int n_audio_ctx = 1500;  // 30 s windows, as in every real whisper model
  int n_audio_state = 64;
  int n_audio_head = 2;
  int n_audio_layer = 2;
  int n_text_ctx = 128;
  int n_text_state = 64;
  int n_text_head = 2;
  int n_text_layer = 1;  // not 2: whisper.cpp takes 2-layer decoders for distil-whisper
  int n_mels = 80;
  bool f16 = true;  // 2-D weights in F16 (ftype 1), like the published ggml models
  uint64_t seed = 42;
};

// The dimensions of OpenAI's whisper "tiny" (39 M parameters).
TinyWhisperSpec whisper_tiny_dimensions();

bool write_tiny_whisper_bin(const std::string& path, const TinyWhisperSpec& spec,
                            std::string* error);

}  // namespace allm
