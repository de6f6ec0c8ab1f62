// Decodes an uploaded audio file (WAV, MP3, FLAC) from memory into what whisper takes: 16 kHz
// mono float samples. Knows nothing about HTTP; problems come back as messages for the user.
#pragma once

#include <cstdint>
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

enum class AudioDecodeStatus { OK, UNSUPPORTED_FORMAT, INVALID, TOO_LONG };

struct AudioDecodeResult {
  AudioDecodeStatus status = AudioDecodeStatus::OK;
  std::string problem;  // a sentence for the user when status is not OK
};

// Decodes `bytes`; refuses files longer than `max_seconds` (checked before the bulk of the work).
AudioDecodeResult decode_audio(const std::string& bytes, double max_seconds, DecodedAudio* out);

// Averages interleaved channels into one.
std::vector<float> downmix_to_mono(const std::vector<float>& interleaved, int channels);

// Band-limited resampling: a Blackman-windowed sinc whose cutoff sits at the lower Nyquist
// frequency, so downsampling does not alias.
std::vector<float> resample(const std::vector<float>& input, int from_rate, int to_rate);

}  // namespace allm
