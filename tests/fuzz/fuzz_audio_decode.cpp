// The audio decoder behind /v1/audio/*: any upload (WAV, MP3, FLAC or garbage) decodes or is
// refused with a message; what decodes stays within the duration limit.
#include <cmath>

#include "audio/audio_decoder.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  allm::sniff_audio_container(bytes);
  constexpr double kMaxSeconds = 4.0;  // short, so that each input stays fast
  allm::DecodedAudio audio;
  const allm::AudioDecodeResult result = allm::decode_audio(bytes, kMaxSeconds, &audio);
  if (result.status != allm::AudioDecodeStatus::OK) {
    if (result.problem.empty()) fuzz::fail("a refusal without a message");
    return 0;
  }
  if (audio.duration_seconds > kMaxSeconds + 0.5) fuzz::fail("audio over the limit decoded");
  // A second of slack: resampling rounds, and the duration is the source's.
  if (audio.samples.size() > (kMaxSeconds + 1.0) * allm::kWhisperSampleRate) {
    fuzz::fail("more samples than the duration allows");
  }
  return 0;
}
