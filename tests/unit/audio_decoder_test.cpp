// The audio decoder (container sniffing, WAV variants, robustness) and the resampler.
#include "audio/audio_decoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace allm {
namespace {

enum class Encoding { PCM = 1, FLOAT = 3 };

void put_u32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}
void put_u16(std::string& out, uint16_t v) {
  out += static_cast<char>(v & 0xFF);
  out += static_cast<char>(v >> 8);
}

// A WAV file of `frames` frames of a sine (the same on every channel).
std::string make_wav(int rate, int channels, int bits, Encoding encoding, size_t frames,
                     double hz = 440.0, double amplitude = 0.5) {
  std::string data;
  for (size_t i = 0; i < frames; ++i) {
    const double v = amplitude * std::sin(2.0 * M_PI * hz * static_cast<double>(i) / rate);
    for (int c = 0; c < channels; ++c) {
      if (encoding == Encoding::FLOAT) {
        const float f = static_cast<float>(v);
        data.append(reinterpret_cast<const char*>(&f), 4);
      } else if (bits == 8) {
        data += static_cast<char>(static_cast<uint8_t>(std::lround(128 + v * 127)));
      } else {
        const int64_t q = std::llround(v * ((1LL << (bits - 1)) - 1));
        for (int b = 0; b < bits / 8; ++b) data += static_cast<char>((q >> (8 * b)) & 0xFF);
      }
    }
  }
  std::string wav = "RIFF";
  put_u32(wav, static_cast<uint32_t>(36 + data.size()));
  wav += "WAVEfmt ";
  put_u32(wav, 16);
  put_u16(wav, static_cast<uint16_t>(encoding));
  put_u16(wav, static_cast<uint16_t>(channels));
  put_u32(wav, static_cast<uint32_t>(rate));
  put_u32(wav, static_cast<uint32_t>(rate * channels * bits / 8));
  put_u16(wav, static_cast<uint16_t>(channels * bits / 8));
  put_u16(wav, static_cast<uint16_t>(bits));
  wav += "data";
  put_u32(wav, static_cast<uint32_t>(data.size()));
  return wav + data;
}

double rms(const std::vector<float>& x, size_t skip = 0) {
  double sum = 0.0;
  size_t n = 0;
  for (size_t i = skip; i + skip < x.size(); ++i, ++n) sum += x[i] * x[i];
  return n ? std::sqrt(sum / n) : 0.0;
}

std::vector<float> sine(int rate, double hz, size_t n) {
  std::vector<float> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<float>(std::sin(2.0 * M_PI * hz * i / rate));
  return x;
}

TEST(AudioSniff, RecognisesContainers) {
  EXPECT_EQ(sniff_audio_container(make_wav(16000, 1, 16, Encoding::PCM, 10)), AudioContainer::WAV);
  EXPECT_EQ(sniff_audio_container("fLaC\0\0\0\x22"), AudioContainer::FLAC);
  EXPECT_EQ(sniff_audio_container("ID3\x04\0\0"), AudioContainer::MP3);
  EXPECT_EQ(sniff_audio_container(std::string("\xFF\xFB\x90\x00", 4)), AudioContainer::MP3);
  EXPECT_EQ(sniff_audio_container("OggS\0\x02"), AudioContainer::OGG);
  EXPECT_EQ(sniff_audio_container(std::string("\0\0\0\x20"
                                              "ftypM4A ",
                                              12)),
            AudioContainer::MP4);
  EXPECT_EQ(sniff_audio_container(""), AudioContainer::EMPTY);
  EXPECT_EQ(sniff_audio_container("hello, this is text"), AudioContainer::UNKNOWN);
}

TEST(AudioDecode, Pcm16At16kIsUnchanged) {
  DecodedAudio audio;
  const auto result = decode_audio(make_wav(16000, 1, 16, Encoding::PCM, 16000), 60, &audio);
  ASSERT_EQ(result.status, AudioDecodeStatus::OK) << result.problem;
  EXPECT_EQ(audio.samples.size(), 16000u);
  EXPECT_NEAR(audio.duration_seconds, 1.0, 1e-9);
  EXPECT_NEAR(rms(audio.samples), 0.5 / std::sqrt(2.0), 0.01);
}

struct WavCase {
  int rate, channels, bits;
  Encoding encoding;
};

class AudioDecodeVariants : public ::testing::TestWithParam<WavCase> {};

TEST_P(AudioDecodeVariants, DecodesToOneSecondOf16kMono) {
  const WavCase c = GetParam();
  DecodedAudio audio;
  const auto result =
      decode_audio(make_wav(c.rate, c.channels, c.bits, c.encoding, c.rate), 60, &audio);
  ASSERT_EQ(result.status, AudioDecodeStatus::OK) << result.problem;
  EXPECT_EQ(audio.source_rate, c.rate);
  EXPECT_EQ(audio.source_channels, c.channels);
  EXPECT_NEAR(audio.duration_seconds, 1.0, 1e-6);
  EXPECT_NEAR(static_cast<double>(audio.samples.size()), 16000.0, 1.0);
  EXPECT_NEAR(rms(audio.samples, 200), 0.5 / std::sqrt(2.0), 0.02);  // 8-bit is coarse
}

INSTANTIATE_TEST_SUITE_P(Wav, AudioDecodeVariants,
                         ::testing::Values(WavCase{8000, 1, 8, Encoding::PCM},
                                           WavCase{22050, 1, 16, Encoding::PCM},
                                           WavCase{44100, 2, 24, Encoding::PCM},
                                           WavCase{48000, 2, 32, Encoding::PCM},
                                           WavCase{48000, 2, 32, Encoding::FLOAT},
                                           WavCase{96000, 6, 16, Encoding::PCM}));

TEST(AudioDecode, RefusesWhatIsNotSupportedAudio) {
  DecodedAudio audio;
  auto r = decode_audio("", 60, &audio);
  EXPECT_EQ(r.status, AudioDecodeStatus::INVALID);
  EXPECT_NE(r.problem.find("empty"), std::string::npos);
  r = decode_audio("this is not audio at all", 60, &audio);
  EXPECT_EQ(r.status, AudioDecodeStatus::UNSUPPORTED_FORMAT);
  EXPECT_NE(r.problem.find("WAV"), std::string::npos);
  EXPECT_NE(r.problem.find("MP3"), std::string::npos);
  EXPECT_NE(r.problem.find("FLAC"), std::string::npos);
  r = decode_audio(std::string("OggS\0\x02\0\0\0\0\0\0", 12), 60, &audio);
  EXPECT_EQ(r.status, AudioDecodeStatus::UNSUPPORTED_FORMAT);
  EXPECT_NE(r.problem.find("OGG"), std::string::npos);
}

// Compressed WAV encodings are refused before any sample is decoded: miniaudio's ADPCM decoders
// overflow signed integers on crafted blocks (the fuzzer's finding is in the audio_decode corpus).
TEST(AudioDecode, RefusesAdpcmWav) {
  DecodedAudio audio;
  for (uint16_t tag : {uint16_t{0x0002}, uint16_t{0x0011}}) {
    std::string wav = make_wav(16000, 1, 16, Encoding::PCM, 4096);
    std::string field;
    put_u16(field, tag);
    wav.replace(20, 2, field);  // the fmt chunk's format tag
    put_u16(field = "", 256);
    wav.replace(32, 2, field);  // block align: one ADPCM block per 256 bytes
    put_u16(field = "", 4);
    wav.replace(34, 2, field);  // 4 bits per sample
    const auto r = decode_audio(wav, 60, &audio);
    EXPECT_EQ(r.status, AudioDecodeStatus::UNSUPPORTED_FORMAT) << r.problem;
    EXPECT_NE(r.problem.find("ADPCM"), std::string::npos) << r.problem;
    EXPECT_NE(r.problem.find("PCM or float"), std::string::npos) << r.problem;
  }
}

TEST(AudioDecode, TruncatedFilesAreInvalid) {
  const std::string wav = make_wav(16000, 1, 16, Encoding::PCM, 16000);
  DecodedAudio audio;
  for (size_t cut : {size_t{4}, size_t{12}, size_t{30}, size_t{44}}) {
    EXPECT_EQ(decode_audio(wav.substr(0, cut), 60, &audio).status, AudioDecodeStatus::INVALID)
        << "cut at " << cut;
  }
  const auto r = decode_audio(wav.substr(0, wav.size() / 2), 60, &audio);
  EXPECT_EQ(r.status, AudioDecodeStatus::INVALID);
  EXPECT_NE(r.problem.find("truncated"), std::string::npos) << r.problem;
}

TEST(AudioDecode, OversizedHeaderFieldsDoNotCrash) {
  const std::string wav = make_wav(16000, 1, 16, Encoding::PCM, 1600);
  auto patch = [&](size_t offset, uint32_t value) {
    std::string copy = wav;
    std::string v;
    put_u32(v, value);
    copy.replace(offset, 4, v);
    return copy;
  };
  DecodedAudio audio;
  // fmt chunk size, data chunk size, sample rate, and the channel count + rate at once.
  for (const std::string& bad : {patch(16, 0xFFFFFFF0u), patch(40, 0xFFFFFFF0u),
                                 patch(24, 0xFFFFFFFFu), patch(22, 0xFFFFFFFFu)}) {
    const auto r = decode_audio(bad, 60, &audio);
    EXPECT_NE(r.status, AudioDecodeStatus::OK);
    EXPECT_FALSE(r.problem.empty());
  }
}

// fmt chunk sizes that disagree with the fields: miniaudio would seek backwards and loop forever
// on them (a fuzzer finding, kept in the audio_decode corpus), so they are refused beforehand.
TEST(AudioDecode, InconsistentFmtChunkSizesAreCorrupt) {
  const std::string wav = make_wav(16000, 1, 16, Encoding::PCM, 1600);
  DecodedAudio audio;
  for (uint32_t fmt_size : {0xFFFFFFF7u, 0x80000010u, 17u, 8u}) {
    std::string bad = wav;
    std::string v;
    put_u32(v, fmt_size);
    bad.replace(16, 4, v);
    const auto r = decode_audio(bad, 60, &audio);
    EXPECT_EQ(r.status, AudioDecodeStatus::INVALID) << fmt_size;
    EXPECT_NE(r.problem.find("'fmt ' chunk"), std::string::npos) << r.problem;
  }
  // An 18-byte fmt chunk whose extension size claims more than the chunk holds.
  std::string extended = wav.substr(0, 16);
  put_u32(extended, 18);
  extended += wav.substr(20, 16);
  put_u16(extended, 200);
  extended += wav.substr(36);
  const auto r = decode_audio(extended, 60, &audio);
  EXPECT_EQ(r.status, AudioDecodeStatus::INVALID);
  EXPECT_NE(r.problem.find("'fmt ' chunk"), std::string::npos) << r.problem;
  // The same chunk with a consistent extension size still decodes.
  std::string consistent = extended;
  consistent.replace(36, 2, std::string("\0\0", 2));
  EXPECT_EQ(decode_audio(consistent, 60, &audio).status, AudioDecodeStatus::OK);
}

TEST(AudioDecode, RefusesAudioOverTheDurationLimit) {
  DecodedAudio audio;
  const auto r = decode_audio(make_wav(16000, 1, 16, Encoding::PCM, 3 * 16000), 2.0, &audio);
  EXPECT_EQ(r.status, AudioDecodeStatus::TOO_LONG);
  EXPECT_NE(r.problem.find("2.00 s"), std::string::npos) << r.problem;
}

TEST(Resample, KeepsAPassbandToneAndItsLength) {
  const std::vector<float> in = sine(44100, 1000.0, 44100);
  const std::vector<float> out = resample(in, 44100, 16000);
  EXPECT_EQ(out.size(), 16000u);
  EXPECT_NEAR(rms(out, 100), 1.0 / std::sqrt(2.0), 0.01);
  // Still 1 kHz: about 2000 sign changes in one second.
  int crossings = 0;
  for (size_t i = 1; i < out.size(); ++i) crossings += (out[i - 1] < 0) != (out[i] < 0);
  EXPECT_NEAR(crossings, 2000, 4);
}

TEST(Resample, FiltersWhatWouldAlias) {
  // 12 kHz is above the 8 kHz Nyquist of 16 kHz; picking samples would fold it to 4 kHz.
  const std::vector<float> out = resample(sine(48000, 12000.0, 48000), 48000, 16000);
  EXPECT_LT(rms(out, 100), 0.01);
}

TEST(Resample, UpsamplesSmoothly) {
  const std::vector<float> out = resample(sine(8000, 440.0, 8000), 8000, 16000);
  EXPECT_EQ(out.size(), 16000u);
  const std::vector<float> expected = sine(16000, 440.0, 16000);
  double worst = 0.0;
  for (size_t i = 200; i + 200 < out.size(); ++i)
    worst = std::max(worst, double(std::fabs(out[i] - expected[i])));
  EXPECT_LT(worst, 0.01);
}

TEST(Downmix, AveragesChannels) {
  EXPECT_EQ(downmix_to_mono({1.0f, 0.0f, 0.5f, 0.5f}, 2), (std::vector<float>{0.5f, 0.5f}));
  EXPECT_EQ(downmix_to_mono({0.25f, 0.75f}, 1), (std::vector<float>{0.25f, 0.75f}));
}

}  // namespace
}  // namespace allm
