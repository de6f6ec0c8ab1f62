#include "audio/audio_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

// miniaudio (from the llama.cpp tree) is compiled here, decoders only: no devices, no encoders.
#define MA_NO_DEVICE_IO
#define MA_NO_ENCODING
#define MA_NO_GENERATION
#define MA_NO_ENGINE
#define MA_NO_NODE_GRAPH
#define MA_NO_RESOURCE_MANAGER
#define MA_NO_VORBIS
#define MA_NO_OPUS
#define MINIAUDIO_IMPLEMENTATION
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "miniaudio/miniaudio.h"
#pragma GCC diagnostic pop

namespace allm {

namespace {

constexpr const char* kAcceptedFormats = "accepted formats: WAV (PCM or float), MP3, FLAC";

bool starts_with(const std::string& bytes, size_t offset, const char* magic) {
  const size_t n = std::strlen(magic);
  return bytes.size() >= offset + n && bytes.compare(offset, n, magic) == 0;
}

bool is_mpeg_frame_sync(const std::string& bytes) {
  if (bytes.size() < 2) return false;
  const auto b0 = static_cast<unsigned char>(bytes[0]);
  const auto b1 = static_cast<unsigned char>(bytes[1]);
  const bool layer_bits_set = (b1 & 0x06) != 0;  // 00 is "reserved", not an MPEG audio layer
  return b0 == 0xFF && (b1 & 0xE0) == 0xE0 && layer_bits_set;
}

ma_encoding_format miniaudio_format(AudioContainer container) {
  switch (container) {
    case AudioContainer::WAV: return ma_encoding_format_wav;
    case AudioContainer::MP3: return ma_encoding_format_mp3;
    case AudioContainer::FLAC: return ma_encoding_format_flac;
    default: return ma_encoding_format_unknown;
  }
}

AudioDecodeResult failure(AudioDecodeStatus status, std::string problem) {
  return AudioDecodeResult{status, std::move(problem)};
}

std::string seconds_text(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f s", seconds);
  return buf;
}

// A RIFF/RIFX/RF64 field; RIFX stores its numbers big-endian.
uint32_t read_uint(const std::string& bytes, size_t offset, int width, bool big_endian) {
  uint32_t v = 0;
  for (int i = 0; i < width; ++i) {
    const int byte = big_endian ? i : width - 1 - i;
    v = (v << 8) | static_cast<unsigned char>(bytes[offset + byte]);
  }
  return v;
}

// Whether a fmt chunk's own sizes agree. miniaudio seeks past the rest of the chunk by
// (int)(chunk size - bytes it read): a chunk shorter than its fields, or one that claims over
// 2 GiB, turns that into a backwards seek and its chunk loop never ends (found by fuzzing).
bool fmt_chunk_consistent(const std::string& bytes, size_t body, uint32_t size, bool big_endian) {
  if (size == 16) return true;
  if (size < 18) return false;
  return 18u + read_uint(bytes, body + 16, 2, big_endian) <= size;
}

// Walks a WAVE file's chunks up to its data chunk and says what is wrong with them, if anything,
// before miniaudio parses them. An empty answer means: let the decoder judge.
std::string wav_chunk_problem(const std::string& bytes) {
  const bool big_endian = starts_with(bytes, 0, "RIFX");
  if (bytes.size() < 12 || !starts_with(bytes, 8, "WAVE")) return "";
  for (size_t offset = 12; offset + 8 <= bytes.size();) {
    const uint32_t size = read_uint(bytes, offset + 4, 4, big_endian);
    const size_t available = bytes.size() - offset - 8;
    std::string id = bytes.substr(offset, 4);
    if (id == "data") {
      // 0 and 0xFFFFFFFF are what streaming writers (and RF64) put there; they claim nothing.
      const bool cut_off = size != 0 && size != 0xFFFFFFFFu && size > available;
      return cut_off ? "the WAV file is truncated: its data chunk is larger than the file" : "";
    }
    std::replace_if(
        id.begin(), id.end(), [](char c) { return c < 0x20 || c > 0x7E; }, '?');
    if (size > available ||
        (id == "fmt " && !fmt_chunk_consistent(bytes, offset + 8, size, big_endian))) {
      return "the WAV header is corrupt: its '" + id + "' chunk claims " + std::to_string(size) +
             " bytes";
    }
    offset += 8 + size + (size & 1);  // chunks are padded to even sizes
  }
  return "";
}

// What is wrong with the WAV sample encoding miniaudio found in the fmt chunk (an extensible
// header's sub-format already resolved), if anything. Only PCM and float are let through:
// miniaudio's ADPCM decoders overflow signed integers on crafted blocks (found by fuzzing), and no
// other encoding is tested here.
std::string wav_encoding_problem(const ma_decoder& decoder) {
  const ma_uint16 tag = static_cast<const ma_wav*>(decoder.pBackend)->dr.translatedFormatTag;
  if (tag == MA_DR_WAVE_FORMAT_PCM || tag == MA_DR_WAVE_FORMAT_IEEE_FLOAT) return "";
  char hex[8];
  std::snprintf(hex, sizeof hex, "0x%04X", tag);
  const char* name = tag == MA_DR_WAVE_FORMAT_ADPCM       ? " (MS ADPCM)"
                     : tag == MA_DR_WAVE_FORMAT_DVI_ADPCM ? " (IMA ADPCM)"
                     : tag == MA_DR_WAVE_FORMAT_ALAW      ? " (A-law)"
                     : tag == MA_DR_WAVE_FORMAT_MULAW     ? " (mu-law)"
                                                          : "";
  return std::string("WAV sample encoding ") + hex + name + " is not supported (" +
         kAcceptedFormats + ")";
}

// Blackman-windowed sinc, tabulated: the kernel is evaluated at arbitrary fractional offsets for
// every output sample, and sin() per tap would dominate the cost.
constexpr int kZeroCrossings = 16;  // kernel half-width in zero crossings
constexpr int kTableSteps = 512;    // table entries per zero crossing

const std::vector<float>& sinc_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(kZeroCrossings * kTableSteps + 2, 0.0f);
    for (size_t i = 0; i <= static_cast<size_t>(kZeroCrossings * kTableSteps); ++i) {
      const double x = static_cast<double>(i) / kTableSteps;
      const double sinc = i == 0 ? 1.0 : std::sin(M_PI * x) / (M_PI * x);
      const double w = 0.42 + 0.5 * std::cos(M_PI * x / kZeroCrossings) +
                       0.08 * std::cos(2.0 * M_PI * x / kZeroCrossings);
      t[i] = static_cast<float>(sinc * w);
    }
    return t;
  }();
  return table;
}

float kernel_at(const std::vector<float>& table, double x) {
  x = std::fabs(x) * kTableSteps;
  const size_t i = static_cast<size_t>(x);
  if (i >= table.size() - 1) return 0.0f;
  const float frac = static_cast<float>(x - static_cast<double>(i));
  return table[i] + (table[i + 1] - table[i]) * frac;
}

}  // namespace

AudioContainer sniff_audio_container(const std::string& bytes) {
  if (bytes.empty()) return AudioContainer::EMPTY;
  // Any RIFF counts, so that a cut-off WAV header is reported as a broken WAV.
  if (starts_with(bytes, 0, "RIFF")) return AudioContainer::WAV;
  if (starts_with(bytes, 0, "RIFX") || starts_with(bytes, 0, "RF64")) return AudioContainer::WAV;
  if (starts_with(bytes, 0, "fLaC")) return AudioContainer::FLAC;
  if (starts_with(bytes, 0, "ID3") || is_mpeg_frame_sync(bytes)) return AudioContainer::MP3;
  if (starts_with(bytes, 0, "OggS")) return AudioContainer::OGG;
  if (starts_with(bytes, 4, "ftyp")) return AudioContainer::MP4;
  if (starts_with(bytes, 0, "\x1A\x45\xDF\xA3")) return AudioContainer::WEBM;
  return AudioContainer::UNKNOWN;
}

const char* audio_container_name(AudioContainer container) {
  switch (container) {
    case AudioContainer::WAV: return "WAV";
    case AudioContainer::MP3: return "MP3";
    case AudioContainer::FLAC: return "FLAC";
    case AudioContainer::OGG: return "OGG";
    case AudioContainer::MP4: return "MP4/M4A";
    case AudioContainer::WEBM: return "WebM/Matroska";
    case AudioContainer::EMPTY: return "empty";
    case AudioContainer::UNKNOWN: break;
  }
  return "unknown";
}

void downmix_to_mono(const float* interleaved, size_t frames, int channels,
                     std::vector<float>* mono) {
  mono->resize(frames);
  for (size_t i = 0; i < frames; ++i) {
    float sum = 0.0f;
    for (int c = 0; c < channels; ++c) sum += interleaved[i * channels + c];
    (*mono)[i] = sum / static_cast<float>(channels);
  }
}

Resampler::Resampler(int from_rate, int to_rate)
    : from_rate_(from_rate),
      to_rate_(to_rate),
      step_(static_cast<double>(from_rate) / to_rate),
      // Cutoff relative to the input's Nyquist; slightly below the target's Nyquist when
      // downsampling so the window's transition band does not fold back.
      cutoff_(std::min(1.0, static_cast<double>(to_rate) / from_rate) * 0.96),
      half_width_(kZeroCrossings / cutoff_) {}

void Resampler::push(const float* input, size_t n, std::vector<float>* out) {
  if (from_rate_ == to_rate_) {
    out->insert(out->end(), input, input + n);
    return;
  }
  window_.insert(window_.end(), input, input + n);
  received_ += n;
  emit(false, out);
  // Drop the input no later output sample reaches back to.
  const double first_needed = std::ceil(static_cast<double>(produced_) * step_ - half_width_);
  const uint64_t keep_from = static_cast<uint64_t>(std::max(0.0, first_needed));
  if (keep_from > window_start_) {
    const size_t drop =
        static_cast<size_t>(std::min<uint64_t>(keep_from - window_start_, window_.size()));
    window_.erase(window_.begin(), window_.begin() + static_cast<long>(drop));
    window_start_ += drop;
  }
}

void Resampler::finish(std::vector<float>* out) {
  if (from_rate_ != to_rate_) emit(true, out);
}

// Output sample n is centred on input position n * step; it is computed once every input sample
// its window reaches has arrived, or (at the end) from what there is.
void Resampler::emit(bool final, std::vector<float>* out) {
  if (received_ == 0) return;
  const std::vector<float>& table = sinc_table();
  const uint64_t total_out = (received_ * to_rate_ + from_rate_ - 1) / from_rate_;
  const long last = static_cast<long>(received_) - 1;
  for (; produced_ < total_out; ++produced_) {
    const double center = static_cast<double>(produced_) * step_;
    const long window_end = static_cast<long>(std::floor(center + half_width_));
    if (!final && window_end > last) break;
    const long first = std::max(0L, static_cast<long>(std::ceil(center - half_width_)));
    const long end = std::min(last, window_end);
    const long offset = static_cast<long>(window_start_);
    double sum = 0.0;
    for (long k = first; k <= end; ++k) {
      sum += window_[k - offset] * kernel_at(table, (center - k) * cutoff_);
    }
    out->push_back(static_cast<float>(sum * cutoff_));
  }
}

std::vector<float> resample(const std::vector<float>& input, int from_rate, int to_rate) {
  std::vector<float> out;
  Resampler resampler(from_rate, to_rate);
  resampler.push(input.data(), input.size(), &out);
  resampler.finish(&out);
  return out;
}

namespace {

// An upload opened by miniaudio, with what its header says. Not movable: miniaudio's backends
// point back at the decoder.
struct OpenedAudio {
  OpenedAudio() = default;
  OpenedAudio(const OpenedAudio&) = delete;
  OpenedAudio& operator=(const OpenedAudio&) = delete;
  ~OpenedAudio() {
    if (open) ma_decoder_uninit(&decoder);
  }

  ma_decoder decoder;
  bool open = false;
  std::string kind;  // "WAV", "MP3", "FLAC"
  int channels = 0, rate = 0;
  uint64_t declared_frames = 0;  // the length the header declares; 0: none
};

std::string too_long(double max_seconds) {
  return "the audio is longer than the limit of " + seconds_text(max_seconds) +
         " (--max-audio-seconds)";
}

// Everything that needs no decoding: the container, the header, and the declared length (a
// header that declares more than the limit means a file that is too long or truncated).
AudioDecodeResult open_audio(const std::string& bytes, double max_seconds, OpenedAudio* audio) {
  const AudioContainer container = sniff_audio_container(bytes);
  if (container == AudioContainer::EMPTY) {
    return failure(AudioDecodeStatus::INVALID, "the audio file is empty");
  }
  if (container == AudioContainer::UNKNOWN) {
    return failure(
        AudioDecodeStatus::UNSUPPORTED_FORMAT,
        std::string("the file is not audio in a supported format (") + kAcceptedFormats + ")");
  }
  if (miniaudio_format(container) == ma_encoding_format_unknown) {
    return failure(AudioDecodeStatus::UNSUPPORTED_FORMAT,
                   std::string(audio_container_name(container)) + " files are not supported (" +
                       kAcceptedFormats + ")");
  }
  audio->kind = audio_container_name(container);
  if (container == AudioContainer::WAV) {
    std::string problem = wav_chunk_problem(bytes);
    if (!problem.empty()) return failure(AudioDecodeStatus::INVALID, std::move(problem));
  }
  ma_decoder_config config = ma_decoder_config_init(ma_format_f32, 0, 0);
  config.encodingFormat = miniaudio_format(container);
  if (ma_decoder_init_memory(bytes.data(), bytes.size(), &config, &audio->decoder) != MA_SUCCESS) {
    return failure(AudioDecodeStatus::INVALID, "the file starts like " + audio->kind +
                                                   " but cannot be decoded (corrupt or truncated)");
  }
  audio->open = true;
  if (container == AudioContainer::WAV) {
    std::string problem = wav_encoding_problem(audio->decoder);
    if (!problem.empty()) return failure(AudioDecodeStatus::UNSUPPORTED_FORMAT, std::move(problem));
  }
  ma_format format;
  ma_uint32 channels = 0, rate = 0;
  ma_decoder_get_data_format(&audio->decoder, &format, &channels, &rate, nullptr, 0);
  if (channels == 0 || channels > 32 || rate < 1000 || rate > 768000) {
    return failure(AudioDecodeStatus::INVALID, "the " + audio->kind + " header is invalid (" +
                                                   std::to_string(channels) + " channels at " +
                                                   std::to_string(rate) + " Hz)");
  }
  audio->channels = static_cast<int>(channels);
  audio->rate = static_cast<int>(rate);
  ma_uint64 declared = 0;
  if (ma_decoder_get_length_in_pcm_frames(&audio->decoder, &declared) != MA_SUCCESS) declared = 0;
  audio->declared_frames = declared;
  const double declared_seconds = static_cast<double>(declared) / rate;
  if (declared_seconds > max_seconds) {
    return failure(AudioDecodeStatus::TOO_LONG, too_long(max_seconds) + ": its header declares " +
                                                    seconds_text(declared_seconds));
  }
  return {};
}

// Reads the decoder chunk by chunk into 16 kHz mono. The only buffer that grows is the output,
// and only as decoded frames arrive: at most `max_frames` source frames are taken.
AudioDecodeStatus decode_to_16k_mono(OpenedAudio& audio, uint64_t max_frames,
                                     const std::function<bool()>& should_stop,
                                     std::vector<float>* out, uint64_t* frames) {
  constexpr ma_uint64 kChunkFrames = 16384;  // at most 2 MiB of interleaved float (32 channels)
  std::vector<float> chunk(kChunkFrames * audio.channels);
  std::vector<float> mono;
  Resampler resampler(audio.rate, kWhisperSampleRate);
  *frames = 0;
  for (;;) {
    if (should_stop && should_stop()) return AudioDecodeStatus::STOPPED;
    ma_uint64 got = 0;
    const ma_result result =
        ma_decoder_read_pcm_frames(&audio.decoder, chunk.data(), kChunkFrames, &got);
    *frames += got;
    if (*frames > max_frames) return AudioDecodeStatus::TOO_LONG;
    downmix_to_mono(chunk.data(), got, audio.channels, &mono);
    resampler.push(mono.data(), mono.size(), out);
    if (result != MA_SUCCESS || got == 0) break;
  }
  resampler.finish(out);
  return AudioDecodeStatus::OK;
}

}  // namespace

AudioDecodeResult check_audio_header(const std::string& bytes, double max_seconds) {
  OpenedAudio audio;
  return open_audio(bytes, max_seconds, &audio);
}

AudioDecodeResult decode_audio(const std::string& bytes, double max_seconds, DecodedAudio* out,
                               const std::function<bool()>& should_stop) {
  OpenedAudio audio;
  if (AudioDecodeResult opened = open_audio(bytes, max_seconds, &audio);
      opened.status != AudioDecodeStatus::OK) {
    return opened;
  }
  const uint64_t max_frames = static_cast<uint64_t>(max_seconds * audio.rate);
  uint64_t frames = 0;
  std::vector<float> samples;
  switch (decode_to_16k_mono(audio, max_frames, should_stop, &samples, &frames)) {
    case AudioDecodeStatus::TOO_LONG:
      return failure(AudioDecodeStatus::TOO_LONG, too_long(max_seconds));
    case AudioDecodeStatus::STOPPED: return failure(AudioDecodeStatus::STOPPED, "decoding stopped");
    default: break;
  }
  if (frames == 0) {
    return failure(AudioDecodeStatus::INVALID,
                   "the " + audio.kind + " file holds no audio samples (empty or corrupt)");
  }
  // A header that promises more than the data delivers means the upload was cut off.
  const uint64_t declared = audio.declared_frames;
  if (declared > frames && declared - frames > static_cast<uint64_t>(audio.rate) / 100) {
    return failure(AudioDecodeStatus::INVALID,
                   "the " + audio.kind + " file is truncated: its header declares " +
                       seconds_text(static_cast<double>(declared) / audio.rate) +
                       " of audio but it holds " +
                       seconds_text(static_cast<double>(frames) / audio.rate));
  }
  out->source_rate = audio.rate;
  out->source_channels = audio.channels;
  out->samples = std::move(samples);
  out->duration_seconds = static_cast<double>(frames) / audio.rate;
  return {};
}

}  // namespace allm
