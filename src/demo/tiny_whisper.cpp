#include "demo/tiny_whisper.h"

#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "ggml.h"

namespace allm {

namespace {

constexpr uint32_t kGgmlFileMagic = 0x67676d6c;  // "ggml", what whisper_model_load checks
constexpr int kSampleRate = 16000;
constexpr int kFftBins = 201;       // whisper's 400-point FFT: n_fft / 2 + 1 bins
constexpr int kTextTokens = 50257;  // ids below the first special token (<|endoftext|> and before)

class BinWriter {
 public:
  explicit BinWriter(const std::string& path)
      : file_(std::fopen(path.c_str(), "wb"), &std::fclose) {}
  bool ok() const { return file_ && !failed_; }
  void i32(int32_t v) { bytes(&v, sizeof v); }
  void u32(uint32_t v) { bytes(&v, sizeof v); }
  void bytes(const void* data, size_t n) {
    if (file_ && std::fwrite(data, 1, n, file_.get()) != n) failed_ = true;
  }

 private:
  std::unique_ptr<FILE, int (*)(FILE*)> file_;
  bool failed_ = false;
};

// Slaney-style mel scale (librosa's default, which OpenAI's mel filters were made with).
double hz_to_mel(double hz) {
  const double linear_end = 1000.0, step = 200.0 / 3.0, log_step = std::log(6.4) / 27.0;
  return hz < linear_end ? hz / step : linear_end / step + std::log(hz / linear_end) / log_step;
}

double mel_to_hz(double mel) {
  const double linear_end = 1000.0, step = 200.0 / 3.0, log_step = std::log(6.4) / 27.0;
  const double mel_end = linear_end / step;
  return mel < mel_end ? mel * step : linear_end * std::exp(log_step * (mel - mel_end));
}

// Triangular mel filters over the FFT bins, area-normalised: the same kind of filterbank the
// real models carry, so the log-mel input has realistic statistics.
std::vector<float> mel_filters(int n_mels) {
  std::vector<double> edges(n_mels + 2);
  const double lo = hz_to_mel(0.0), hi = hz_to_mel(kSampleRate / 2.0);
  for (int i = 0; i < n_mels + 2; ++i) edges[i] = mel_to_hz(lo + (hi - lo) * i / (n_mels + 1));
  std::vector<float> filters(static_cast<size_t>(n_mels) * kFftBins, 0.0f);
  for (int m = 0; m < n_mels; ++m) {
    const double norm = 2.0 / (edges[m + 2] - edges[m]);
    for (int k = 0; k < kFftBins; ++k) {
      const double hz = k * static_cast<double>(kSampleRate) / 400.0;
      const double rise = (hz - edges[m]) / (edges[m + 1] - edges[m]);
      const double fall = (edges[m + 2] - hz) / (edges[m + 2] - edges[m + 1]);
      filters[static_cast<size_t>(m) * kFftBins + k] =
          static_cast<float>(std::max(0.0, std::min(rise, fall)) * norm);
    }
  }
  return filters;
}

// Printable pseudo-words: single characters first (so any ASCII prompt tokenizes), then
// syllable words, most with a leading space as in GPT-2 vocabularies (word boundaries).
std::vector<std::string> text_vocabulary(std::mt19937_64& rng) {
  static const char* const syllables[] = {"ka", "lo", "mi", "ne", "ru", "ta", "so", "vi", "de",
                                          "pa", "en", "or", "an", "is", "th", "er", "in", "qu"};
  std::vector<std::string> vocab;
  for (char c = '!'; c <= '~'; ++c) vocab.emplace_back(1, c);
  vocab.emplace_back(" ");
  std::uniform_int_distribution<int> syllable(0, sizeof syllables / sizeof *syllables - 1);
  std::uniform_int_distribution<int> length(1, 3);
  std::uniform_int_distribution<int> percent(0, 99);
  while (static_cast<int>(vocab.size()) < kTextTokens) {
    std::string word = percent(rng) < 70 ? " " : "";
    for (int n = length(rng); n > 0; --n) word += syllables[syllable(rng)];
    if (percent(rng) < 5) word += percent(rng) < 50 ? "." : ",";
    vocab.push_back(word);
  }
  return vocab;
}

struct TensorWriter {
  BinWriter& out;
  std::mt19937_64& rng;
  bool f16;

  enum class Init { NORMAL, ONES, ZEROS };

  // One tensor record: n_dims, name length, type, dims (fastest first), name, data.
  void write(const std::string& name, std::vector<int> ne, bool weight, Init init, float stddev) {
    const bool half = weight && f16;
    out.i32(static_cast<int32_t>(ne.size()));
    out.i32(static_cast<int32_t>(name.size()));
    out.i32(half ? GGML_TYPE_F16 : GGML_TYPE_F32);
    size_t count = 1;
    for (int d : ne) {
      out.i32(d);
      count *= static_cast<size_t>(d);
    }
    out.bytes(name.data(), name.size());
    std::normal_distribution<float> normal(0.0f, stddev);
    std::vector<float> values(count);
    for (float& v : values)
      v = init == Init::NORMAL ? normal(rng) : init == Init::ONES ? 1.0f : 0.0f;
    if (!half) {
      out.bytes(values.data(), values.size() * sizeof(float));
      return;
    }
    std::vector<ggml_fp16_t> halves(count);
    for (size_t i = 0; i < count; ++i) halves[i] = ggml_fp32_to_fp16(values[i]);
    out.bytes(halves.data(), halves.size() * sizeof(ggml_fp16_t));
  }

  void layer_norm(const std::string& prefix, int n) {
    write(prefix + ".weight", {n}, false, Init::ONES, 0);
    write(prefix + ".bias", {n}, false, Init::ZEROS, 0);
  }

  // Query/value/out carry biases, key does not (as in whisper).
  void attention(const std::string& prefix, int n) {
    const float s = 1.0f / std::sqrt(static_cast<float>(n));
    write(prefix + ".query.weight", {n, n}, true, Init::NORMAL, s);
    write(prefix + ".query.bias", {n}, false, Init::ZEROS, 0);
    write(prefix + ".key.weight", {n, n}, true, Init::NORMAL, s);
    write(prefix + ".value.weight", {n, n}, true, Init::NORMAL, s);
    write(prefix + ".value.bias", {n}, false, Init::ZEROS, 0);
    write(prefix + ".out.weight", {n, n}, true, Init::NORMAL, s);
    write(prefix + ".out.bias", {n}, false, Init::ZEROS, 0);
  }

  void mlp(const std::string& prefix, int n) {
    const float s = 1.0f / std::sqrt(static_cast<float>(n));
    write(prefix + ".mlp.0.weight", {n, 4 * n}, true, Init::NORMAL, s);
    write(prefix + ".mlp.0.bias", {4 * n}, false, Init::ZEROS, 0);
    write(prefix + ".mlp.2.weight", {4 * n, n}, true, Init::NORMAL, s / 2);
    write(prefix + ".mlp.2.bias", {n}, false, Init::ZEROS, 0);
  }
};

void write_hparams(BinWriter& out, const TinyWhisperSpec& spec) {
  for (int v : {spec.n_vocab, spec.n_audio_ctx, spec.n_audio_state, spec.n_audio_head,
                spec.n_audio_layer, spec.n_text_ctx, spec.n_text_state, spec.n_text_head,
                spec.n_text_layer, spec.n_mels, spec.f16 ? 1 : 0}) {
    out.i32(v);
  }
}

void write_vocabulary(BinWriter& out, std::mt19937_64& rng) {
  const std::vector<std::string> vocab = text_vocabulary(rng);
  out.i32(static_cast<int32_t>(vocab.size()));  // special tokens after these get default names
  for (const std::string& token : vocab) {
    out.u32(static_cast<uint32_t>(token.size()));
    out.bytes(token.data(), token.size());
  }
}

void write_encoder(TensorWriter& t, const TinyWhisperSpec& spec) {
  const int n = spec.n_audio_state;
  t.write("encoder.positional_embedding", {n, spec.n_audio_ctx}, false, TensorWriter::Init::NORMAL,
          0.5f);
  t.write("encoder.conv1.weight", {3, spec.n_mels, n}, true, TensorWriter::Init::NORMAL,
          1.0f / std::sqrt(3.0f * spec.n_mels));
  t.write("encoder.conv1.bias", {1, n}, false, TensorWriter::Init::ZEROS, 0);
  t.write("encoder.conv2.weight", {3, n, n}, true, TensorWriter::Init::NORMAL,
          1.0f / std::sqrt(3.0f * n));
  t.write("encoder.conv2.bias", {1, n}, false, TensorWriter::Init::ZEROS, 0);
  t.layer_norm("encoder.ln_post", n);
  for (int i = 0; i < spec.n_audio_layer; ++i) {
    const std::string block = "encoder.blocks." + std::to_string(i);
    t.layer_norm(block + ".mlp_ln", n);
    t.mlp(block, n);
    t.layer_norm(block + ".attn_ln", n);
    t.attention(block + ".attn", n);
  }
}

void write_decoder(TensorWriter& t, const TinyWhisperSpec& spec) {
  const int n = spec.n_text_state;
  // Position dominates the residual stream: with tied output embeddings a dominant token
  // embedding would make every token predict itself (endless repeats, then whisper's slow
  // temperature fallbacks). Unit-scale token embeddings keep the logits peaked, so greedy
  // decoding is confident.
  t.write("decoder.positional_embedding", {n, spec.n_text_ctx}, false, TensorWriter::Init::NORMAL,
          4.0f);
  t.write("decoder.token_embedding.weight", {n, spec.n_vocab}, true, TensorWriter::Init::NORMAL,
          1.0f);
  t.layer_norm("decoder.ln", n);
  for (int i = 0; i < spec.n_text_layer; ++i) {
    const std::string block = "decoder.blocks." + std::to_string(i);
    t.layer_norm(block + ".mlp_ln", n);
    t.mlp(block, n);
    t.layer_norm(block + ".attn_ln", n);
    t.attention(block + ".attn", n);
    t.layer_norm(block + ".cross_attn_ln", n);
    t.attention(block + ".cross_attn", n);
  }
}

}  // namespace

TinyWhisperSpec whisper_tiny_dimensions() {
  TinyWhisperSpec spec;
  spec.n_audio_state = spec.n_text_state = 384;
  spec.n_audio_head = spec.n_text_head = 6;
  spec.n_audio_layer = spec.n_text_layer = 4;
  spec.n_text_ctx = 448;
  return spec;
}

bool write_tiny_whisper_bin(const std::string& path, const TinyWhisperSpec& spec,
                            std::string* error) {
  if (spec.n_audio_state != spec.n_text_state || spec.n_audio_state % spec.n_audio_head != 0 ||
      spec.n_text_state % spec.n_text_head != 0 || spec.n_vocab <= kTextTokens) {
    *error = "inconsistent whisper dimensions";
    return false;
  }
  BinWriter out(path);
  if (!out.ok()) {
    *error = "cannot open " + path + " for writing";
    return false;
  }
  std::mt19937_64 rng(spec.seed);
  out.u32(kGgmlFileMagic);
  write_hparams(out, spec);
  const std::vector<float> filters = mel_filters(spec.n_mels);
  out.i32(spec.n_mels);
  out.i32(kFftBins);
  out.bytes(filters.data(), filters.size() * sizeof(float));
  write_vocabulary(out, rng);
  TensorWriter tensors{out, rng, spec.f16};
  write_encoder(tensors, spec);
  write_decoder(tensors, spec);
  if (!out.ok()) {
    *error = "write to " + path + " failed";
    return false;
  }
  return true;
}

}  // namespace allm
