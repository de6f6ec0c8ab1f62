// The audio decoder (container sniffing, WAV variants, robustness, memory bounded by what the
// data yields) and the resampler.
#include "audio/audio_decoder.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
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

TEST(Resample, AnyChunkingGivesTheSameOutputAsOnePush) {
  std::mt19937 rng(7);
  for (const auto& [from, to] : {std::pair{44100, 16000}, std::pair{8000, 16000},
                                 std::pair{768000, 16000}, std::pair{16000, 16000}}) {
    std::vector<float> in = sine(from, 440.0, static_cast<size_t>(from) / 2);
    for (float& x : in) x += std::uniform_real_distribution<float>(-0.1f, 0.1f)(rng);
    const std::vector<float> whole = resample(in, from, to);
    EXPECT_EQ(whole.size(), (in.size() * to + from - 1) / from);
    Resampler resampler(from, to);
    std::vector<float> chunked;
    for (size_t at = 0; at < in.size();) {
      const size_t n = std::min(in.size() - at, size_t{1} + rng() % 5000);
      resampler.push(in.data() + at, n, &chunked);
      at += n;
    }
    resampler.finish(&chunked);
    EXPECT_EQ(chunked, whole) << from << " -> " << to;
  }
}

TEST(Downmix, AveragesChannels) {
  std::vector<float> mono;
  const std::vector<float> stereo{1.0f, 0.0f, 0.5f, 0.5f};
  downmix_to_mono(stereo.data(), 2, 2, &mono);
  EXPECT_EQ(mono, (std::vector<float>{0.5f, 0.5f}));
  const std::vector<float> one{0.25f, 0.75f};
  downmix_to_mono(one.data(), 2, 1, &mono);
  EXPECT_EQ(mono, one);
}

// --- hostile files: tiny uploads whose headers claim hours at 768 kHz x 32 channels, or whose
// data expands a thousandfold. Memory must follow the 16 kHz output, never the claim.

// A value from /proc/self/status, in bytes ("VmHWM", "VmRSS").
long status_bytes(const std::string& key) {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1)) * 1024;
  }
  return -1;
}

// How far this process's peak resident memory rose above its resident memory while `run` ran
// (Linux: writing 5 to /proc/self/clear_refs resets the peak to the current size). Free heap
// memory is handed back first, or a new allocation could reuse pages that are still resident.
long peak_rss_growth(const std::function<void()>& run) {
  malloc_trim(0);
  std::ofstream("/proc/self/clear_refs") << "5";
  const long before = status_bytes("VmRSS");
  EXPECT_LE(status_bytes("VmHWM"), before + (1 << 20)) << "the peak was not reset";
  run();
  return status_bytes("VmHWM") - before;
}

// What any decode may hold at its peak: the 16 kHz output twice over (a growing vector copies
// itself) and a few MiB of working buffers.
long memory_bound(double seconds) {
  return static_cast<long>(2 * seconds * kWhisperSampleRate * sizeof(float)) + (16L << 20);
}

void put_be(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

uint8_t flac_crc8(const std::string& bytes) {
  uint8_t crc = 0;
  for (unsigned char b : bytes) {
    crc ^= b;
    for (int i = 0; i < 8; ++i)
      crc = static_cast<uint8_t>(crc & 0x80 ? (crc << 1) ^ 0x07 : crc << 1);
  }
  return crc;
}

uint16_t flac_crc16(const std::string& bytes) {
  uint16_t crc = 0;
  for (unsigned char b : bytes) {
    crc ^= static_cast<uint16_t>(b << 8);
    for (int i = 0; i < 8; ++i) {
      crc = static_cast<uint16_t>(crc & 0x8000 ? (crc << 1) ^ 0x8005 : crc << 1);
    }
  }
  return crc;
}

// FLAC's UTF-8-like coding of a frame number.
std::string flac_utf8(uint32_t v) {
  if (v < 0x80) return std::string(1, static_cast<char>(v));
  std::string tail;
  int bytes = 1;
  for (uint32_t room = 0x1F; v > room; room >>= 1) {
    tail.insert(tail.begin(), static_cast<char>(0x80 | (v & 0x3F)));
    v >>= 6;
    ++bytes;
  }
  const auto lead = static_cast<char>(((0xFF00 >> bytes) & 0xFF) | v);
  return lead + tail;
}

// A FLAC file of `blocks` frames of 65535 samples on `channels` (1..8) channels, each channel a
// CONSTANT subframe: about 30 bytes a frame, whatever the rate. Its STREAMINFO declares
// `declared_samples` (0: unknown).
std::string make_constant_flac(int rate, int channels, int blocks, uint64_t declared_samples) {
  constexpr int kBlock = 65535;
  std::string flac = "fLaC";
  flac += '\x80';  // last metadata block, STREAMINFO
  put_be(flac, 34, 3);
  put_be(flac, kBlock, 2);  // min and max block size
  put_be(flac, kBlock, 2);
  put_be(flac, 0, 3);  // frame sizes unknown
  put_be(flac, 0, 3);
  // 20 bits rate, 3 bits channels - 1, 5 bits bits per sample - 1, 36 bits total samples.
  const uint64_t fields = (uint64_t(rate) << 44) | (uint64_t(channels - 1) << 41) |
                          (uint64_t(15) << 36) | (declared_samples & ((uint64_t(1) << 36) - 1));
  put_be(flac, fields, 8);
  flac += std::string(16, '\0');  // MD5 unknown
  for (int i = 0; i < blocks; ++i) {
    std::string frame;
    put_be(frame, 0xFFF8, 2);  // sync, fixed block size
    frame += '\x70';           // block size from the end of the header, rate from STREAMINFO
    frame += static_cast<char>((channels - 1) << 4 | 0x08);  // independent channels, 16 bits
    frame += flac_utf8(static_cast<uint32_t>(i));
    put_be(frame, kBlock - 1, 2);
    frame += static_cast<char>(flac_crc8(frame));
    for (int c = 0; c < channels; ++c) {
      frame += '\0';  // CONSTANT subframe
      put_be(frame, 1000 * (c + 1), 2);
    }
    put_be(frame, flac_crc16(frame), 2);
    flac += frame;
  }
  return flac;
}

// An MPEG-1 layer III frame (48 kHz, 32 kbit/s, stereo: 96 bytes, 1152 samples) of silence;
// `xing_frames` makes it the Xing tag frame that declares the stream's frame count.
std::string mp3_frame(std::optional<uint32_t> xing_frames = std::nullopt) {
  std::string frame("\xFF\xFB\x14\x00", 4);
  frame += std::string(32, '\0');  // side information: nothing coded
  if (xing_frames) {
    frame += "Xing";
    put_be(frame, 1, 4);  // flags: the frame count follows
    put_be(frame, *xing_frames, 4);
  }
  frame.resize(96, '\0');
  return frame;
}

std::string make_silent_mp3(int frames, std::optional<uint32_t> declared_frames = std::nullopt) {
  std::string mp3 = declared_frames ? mp3_frame(declared_frames) : "";
  for (int i = 0; i < frames; ++i) mp3 += mp3_frame();
  return mp3;
}

// 16-bit PCM on 32 channels, `frames` frames, whose data chunk claims 4 GiB. As RF64, its ds64
// chunk declares `rf64_frames` frames.
std::string make_hostile_wav(int rate, size_t frames,
                             std::optional<uint64_t> rf64_frames = std::nullopt) {
  const std::string wav = make_wav(rate, 32, 16, Encoding::PCM, frames);
  const std::string fmt = wav.substr(12, 24), data = wav.substr(44);
  std::string out = rf64_frames ? "RF64" : "RIFF";
  put_u32(out, 0xFFFFFFFFu);
  out += "WAVE";
  if (rf64_frames) {
    out += "ds64";
    put_u32(out, 28);
    const uint64_t data_bytes = *rf64_frames * 32 * 2;
    for (uint64_t v : {data_bytes + 36, data_bytes, *rf64_frames}) {
      put_u32(out, static_cast<uint32_t>(v));
      put_u32(out, static_cast<uint32_t>(v >> 32));
    }
    put_u32(out, 0);  // no table
  }
  out += fmt + "data";
  put_u32(out, 0xFFFFFFFFu);
  return out + data;
}

TEST(HostileAudio, FlacThatExpandsAThousandfoldStaysWithinTheOutputBound) {
  // 10 s of limit: the old decoder held 10 s x 768 kHz x 8 channels of float (245 MB) first.
  constexpr double kMaxSeconds = 10;
  const std::string flac = make_constant_flac(768000, 8, 200, 0);  // 17 s in 6 KB
  ASSERT_LT(flac.size(), 8000u);
  AudioDecodeResult r;
  const long growth = peak_rss_growth([&] {
    DecodedAudio audio;
    r = decode_audio(flac, kMaxSeconds, &audio);
  });
  EXPECT_EQ(r.status, AudioDecodeStatus::TOO_LONG) << r.problem;
  EXPECT_LT(growth, memory_bound(kMaxSeconds)) << "peak RSS grew by " << growth << " bytes";
}

TEST(HostileAudio, FlacWithinTheLimitDecodesWhatIsThere) {
  const std::string flac = make_constant_flac(768000, 8, 24, 24 * 65535);  // 2.05 s
  DecodedAudio audio;
  const long growth = peak_rss_growth([&] {
    const auto r = decode_audio(flac, 60, &audio);
    ASSERT_EQ(r.status, AudioDecodeStatus::OK) << r.problem;
  });
  EXPECT_EQ(audio.source_rate, 768000);
  EXPECT_EQ(audio.source_channels, 8);
  EXPECT_NEAR(audio.duration_seconds, 24 * 65535 / 768000.0, 1e-9);
  EXPECT_EQ(audio.samples.size(), (uint64_t{24} * 65535 * 16000 + 767999) / 768000);
  // The channels are constants 1000..8000 of 32768: their mean, 4500 / 32768, past the edges.
  EXPECT_NEAR(audio.samples[audio.samples.size() / 2], 4500.0 / 32768, 2e-3);
  EXPECT_LE(audio.samples.capacity(), 2 * audio.samples.size());
  EXPECT_LT(growth, memory_bound(audio.duration_seconds));
}

TEST(HostileAudio, FlacDeclaringHoursIsRefusedBeforeDecoding) {
  const uint64_t hours = uint64_t(3) * 3600 * 768000;
  const std::string flac = make_constant_flac(768000, 8, 3, hours);
  auto r = check_audio_header(flac, 1800);
  EXPECT_EQ(r.status, AudioDecodeStatus::TOO_LONG) << r.problem;
  EXPECT_NE(r.problem.find("declares 10800.00 s"), std::string::npos) << r.problem;
  // Under a limit above the claim: the three frames decode, and the claim shows the truncation.
  DecodedAudio audio;
  EXPECT_EQ(check_audio_header(flac, 86400).status, AudioDecodeStatus::OK);
  r = decode_audio(flac, 86400, &audio);
  EXPECT_EQ(r.status, AudioDecodeStatus::INVALID) << r.problem;
  EXPECT_NE(r.problem.find("truncated"), std::string::npos) << r.problem;
}

// An MP3's length is known from its header (a Xing frame count, else a scan of the frame headers)
// and miniaudio stops there, so a long one is refused before decoding; one under the limit is
// decoded within the output bound (the old decoder held 144 s of 48 kHz stereo float first).
TEST(HostileAudio, Mp3DecodesWithinTheOutputBound) {
  const std::string mp3 = make_silent_mp3(6000);  // 144 s in 576 KB
  EXPECT_EQ(check_audio_header(mp3, 120).status, AudioDecodeStatus::TOO_LONG);
  DecodedAudio audio;
  const long growth = peak_rss_growth([&] {
    const auto r = decode_audio(mp3, 200, &audio);
    ASSERT_EQ(r.status, AudioDecodeStatus::OK) << r.problem;
  });
  EXPECT_NEAR(audio.duration_seconds, 144.0, 0.1);
  EXPECT_LT(growth, memory_bound(audio.duration_seconds)) << "peak RSS grew by " << growth;
}

TEST(HostileAudio, Mp3DeclaringHoursIsRefusedAndShortMp3Decodes) {
  DecodedAudio audio;
  auto r = check_audio_header(make_silent_mp3(20, 0xFFFFFFF0u), 1800);
  EXPECT_EQ(r.status, AudioDecodeStatus::TOO_LONG) << r.problem;
  r = decode_audio(make_silent_mp3(50), 60, &audio);
  ASSERT_EQ(r.status, AudioDecodeStatus::OK) << r.problem;
  EXPECT_EQ(audio.source_rate, 48000);
  EXPECT_NEAR(audio.duration_seconds, 50 * 1152 / 48000.0, 0.05);
}

TEST(HostileAudio, WavClaimingHoursOn32ChannelsDecodesWhatIsThereOrIsRefused) {
  DecodedAudio audio;
  // 768 kHz is past what miniaudio's WAV reader takes: refused from the header.
  auto r = check_audio_header(make_hostile_wav(768000, 1000), 1800);
  EXPECT_EQ(r.status, AudioDecodeStatus::INVALID) << r.problem;
  // A data chunk that claims 4 GiB: taken as what the file holds, and decoded.
  r = decode_audio(make_hostile_wav(384000, 1000), 1800, &audio);
  ASSERT_EQ(r.status, AudioDecodeStatus::OK) << r.problem;
  EXPECT_EQ(audio.source_channels, 32);
  EXPECT_EQ(audio.samples.size(), (1000u * 16000 + 383999) / 384000);
  // RF64 declaring three hours: refused from the header alone.
  const uint64_t hours = uint64_t(3) * 3600 * 384000;
  r = check_audio_header(make_hostile_wav(384000, 1000, hours), 1800);
  EXPECT_EQ(r.status, AudioDecodeStatus::TOO_LONG) << r.problem;
  // Under a limit above the claim, what is there decodes and the claim shows the truncation.
  r = decode_audio(make_hostile_wav(384000, 1000, hours), 86400, &audio);
  EXPECT_EQ(r.status, AudioDecodeStatus::INVALID) << r.problem;
  EXPECT_NE(r.problem.find("truncated"), std::string::npos) << r.problem;
}

TEST(AudioDecode, StopsBetweenChunksWhenAsked) {
  const std::string flac = make_constant_flac(768000, 2, 40, 0);
  int polls = 0;
  DecodedAudio audio;
  const auto r = decode_audio(flac, 60, &audio, [&] { return ++polls == 3; });
  EXPECT_EQ(r.status, AudioDecodeStatus::STOPPED);
  EXPECT_EQ(polls, 3);
  EXPECT_TRUE(audio.samples.empty());
}

}  // namespace
}  // namespace allm
