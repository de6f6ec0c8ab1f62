// Decodes an uploaded audio file (WAV, MP3, FLAC) from memory into what whisper takes: 16 kHz
// mono float samples. Knows nothing about HTTP; problems come back as messages for the user.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace allm {

constexpr int kWhisperSampleRate = 16000;

enum class AudioContainer { UNKNOWN, WAV, MP3, FLAC, OGG, MP4, WEBM, EMPTY };

// Recognises the container from the first bytes of the file.
AudioContainer sniff_audio_container(const std::string& bytes);
const char* audio_container_name(AudioContainer container);

struct DecodedAudio {
  std::vector<float> samples;  // 16 kHz mono
  double duration_seconds = 0.0;
  int source_rate = 0;
  int source_channels = 0;
};

// STOPPED: the caller's should_stop said so.
enum class AudioDecodeStatus { OK, UNSUPPORTED_FORMAT, INVALID, TOO_LONG, STOPPED };

struct AudioDecodeResult {
  AudioDecodeStatus status = AudioDecodeStatus::OK;
  std::string problem;  // a sentence for the user when status is not OK
};

// The checks that need no decoding, cheap enough to run before a job is admitted: the container,
// the header, and the length the header declares (over `max_seconds`: TOO_LONG). What passes may
// still be refused by decode_audio.
AudioDecodeResult check_audio_header(const std::string& bytes, double max_seconds);

// Decodes `bytes` chunk by chunk, downmixing and resampling as frames arrive, so that memory
// follows the 16 kHz output (4 bytes a sample) plus a fixed working buffer, whatever the header
// claims. Stops with TOO_LONG once the audio passes `max_seconds`, and with STOPPED when
// `should_stop` (polled between chunks; may be empty) returns true.
AudioDecodeResult decode_audio(const std::string& bytes, double max_seconds, DecodedAudio* out,
                               const std::function<bool()>& should_stop = {});

// Averages `frames` interleaved frames of `channels` channels into `mono`.
void downmix_to_mono(const float* interleaved, size_t frames, int channels,
                     std::vector<float>* mono);

// Band-limited resampling of a stream: a Blackman-windowed sinc whose cutoff sits at the lower
// Nyquist frequency, so downsampling does not alias. Keeps only the input that later output
// samples still reach, so any chunking of the input gives the same output as one push.
class Resampler {
 public:
  Resampler(int from_rate, int to_rate);
  // Appends to `out` every output sample whose input window has arrived.
  void push(const float* input, size_t n, std::vector<float>* out);
  // The input has ended: appends the remaining output samples.
  void finish(std::vector<float>* out);

 private:
  void emit(bool final, std::vector<float>* out);

  int from_rate_, to_rate_;
  double step_;    // input samples per output sample
  double cutoff_;  // relative to the input's Nyquist frequency
  double half_width_;
  std::vector<float> window_;  // input samples from window_start_ on
  uint64_t window_start_ = 0, received_ = 0, produced_ = 0;
};

// The whole of `input` through one Resampler.
std::vector<float> resample(const std::vector<float>& input, int from_rate, int to_rate);

}  // namespace allm
