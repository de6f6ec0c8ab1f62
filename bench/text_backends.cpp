// safetensors.cpp vs llama.cpp on the same weights: load time, prefill and decode tokens/s,
// peak RSS. Each measurement runs in a fresh child process (so peak RSS is its own); runs
// alternate A B A B and the per-pair ratios are printed as min / median / max, because this
// shared machine's memory bandwidth drifts from minute to minute.
//
//   allm-bench-text --hf DIR --gguf FILE [--pairs 3] [--prompt 128] [--decode 32] [--threads N]
//                   [--device NAME|none] [--quantize q8_0|q4_0|q4_k] [--label NAME]
// --quantize: safetensors.cpp quantizes the folder's matrices on load (compare with a GGUF
// quantized to the same type by llama-quantize).
// Both backends get the same placement: every layer on the GPU(s) when there are any (or on the
// --device named), the CPU with --device none. Each child prints where its model went.
// With --label, the last line is "row NAME: prefill MIN MEDIAN MAX decode MIN MEDIAN MAX" (the
// ratios), for bench/text_backends.sh's summary table.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "text/backend.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string hf, gguf, child, label, device, quantize;
  int pairs = 3, prompt = 128, decode = 32, threads = 0;
};

struct Sample {
  double load_s = 0, prefill_tps = 0, decode_tps = 0, peak_rss_mib = 0;
};

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int greedy(const float* logits, int n) {
  return static_cast<int>(std::max_element(logits, logits + n) - logits);
}

// The measurement itself, in the child: prints one line "load prefill decode rss".
int run_child(const Options& o) {
  allm::BackendParams params;
  params.ctx_per_sequence = o.prompt + o.decode + 8;
  params.sequences = 1;
  params.threads = o.threads;
  params.gpu_layers = o.device == "none" ? 0 : -1;
  params.device = o.device == "none" ? "" : o.device;
  if (!o.quantize.empty()) params.quantization = *allm::parse_quantization(o.quantize);
  allm::Error error;
  const auto load_start = Clock::now();
  auto backend = o.child == "llama" ? allm::open_llama_backend(o.gguf, params, &error)
                                    : allm::open_safetensors_backend(o.hf, params, &error);
  if (!backend) {
    std::fprintf(stderr, "%s: %s\n", o.child.c_str(), error.message.c_str());
    return 1;
  }
  const double load_s = seconds_since(load_start);
  std::fprintf(stderr, "%s: %s\n", o.child.c_str(), backend->placement().c_str());
  std::mt19937 rng(7);
  std::vector<allm::BatchToken> batch;
  for (int i = 0; i < o.prompt; ++i) {
    batch.push_back({static_cast<int>(rng() % 256), i, 0, i + 1 == o.prompt});
  }
  const auto prefill_start = Clock::now();
  if (backend->decode(batch)) return 1;
  const double prefill_s = seconds_since(prefill_start);
  int token = greedy(backend->logits(o.prompt - 1), backend->vocab_size());
  const auto decode_start = Clock::now();
  for (int i = 0; i < o.decode; ++i) {
    if (backend->decode({{token, o.prompt + i, 0, true}})) return 1;
    token = greedy(backend->logits(0), backend->vocab_size());
  }
  const double decode_s = seconds_since(decode_start);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("%f %f %f %f\n", load_s, o.prompt / prefill_s, o.decode / decode_s,
              usage.ru_maxrss / 1024.0);
  return 0;
}

bool measure(const char* self, const Options& o, const std::string& which, Sample* out) {
  std::string cmd = std::string(self) + " --child " + which + " --hf '" + o.hf + "' --gguf '" +
                    o.gguf + "' --prompt " + std::to_string(o.prompt) + " --decode " +
                    std::to_string(o.decode) + " --threads " + std::to_string(o.threads) +
                    (o.device.empty() ? "" : " --device '" + o.device + "'") +
                    (o.quantize.empty() ? "" : " --quantize " + o.quantize);
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return false;
  const int n = std::fscanf(pipe, "%lf %lf %lf %lf", &out->load_s, &out->prefill_tps,
                            &out->decode_tps, &out->peak_rss_mib);
  return pclose(pipe) == 0 && n == 4;
}

void print_ratio(const char* name, std::vector<double> ratios) {
  std::sort(ratios.begin(), ratios.end());
  std::printf("  %-22s min %.3f  median %.3f  max %.3f\n", name, ratios.front(),
              ratios[ratios.size() / 2], ratios.back());
}

// "MIN MEDIAN MAX" of sorted ratios.
std::string min_median_max(std::vector<double> ratios) {
  std::sort(ratios.begin(), ratios.end());
  char text[96];
  std::snprintf(text, sizeof text, "%.3f %.3f %.3f", ratios.front(), ratios[ratios.size() / 2],
                ratios.back());
  return text;
}

bool parse(int argc, char** argv, Options* o) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i], value = argv[i + 1];
    if (key == "--hf")
      o->hf = value;
    else if (key == "--gguf")
      o->gguf = value;
    else if (key == "--child")
      o->child = value;
    else if (key == "--pairs")
      o->pairs = std::stoi(value);
    else if (key == "--prompt")
      o->prompt = std::stoi(value);
    else if (key == "--decode")
      o->decode = std::stoi(value);
    else if (key == "--threads")
      o->threads = std::stoi(value);
    else if (key == "--label")
      o->label = value;
    else if (key == "--device")
      o->device = value;
    else if (key == "--quantize")
      o->quantize = value;
    else
      return false;
  }
  if (!o->quantize.empty() && !allm::parse_quantization(o->quantize)) return false;
  return !o->hf.empty() && !o->gguf.empty() && o->pairs > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, &o)) {
    std::fprintf(stderr,
                 "usage: allm-bench-text --hf DIR --gguf FILE [--pairs 3] [--prompt 128] "
                 "[--decode 32] [--threads N] [--device NAME|none] [--quantize TYPE] "
                 "[--label NAME]\n");
    return 2;
  }
  if (!o.child.empty()) return run_child(o);
  std::vector<double> load, prefill, decode, rss;
  for (int pair = 0; pair < o.pairs; ++pair) {
    Sample ours, reference;
    if (!measure(argv[0], o, "llama", &reference) || !measure(argv[0], o, "safetensors", &ours)) {
      std::fprintf(stderr, "a measurement failed\n");
      return 1;
    }
    std::printf(
        "pair %d: llama.cpp load %.2fs prefill %.1f t/s decode %.2f t/s rss %.0f MiB | "
        "safetensors.cpp load %.2fs prefill %.1f t/s decode %.2f t/s rss %.0f MiB\n",
        pair, reference.load_s, reference.prefill_tps, reference.decode_tps, reference.peak_rss_mib,
        ours.load_s, ours.prefill_tps, ours.decode_tps, ours.peak_rss_mib);
    std::fflush(stdout);
    load.push_back(ours.load_s / reference.load_s);
    prefill.push_back(ours.prefill_tps / reference.prefill_tps);
    decode.push_back(ours.decode_tps / reference.decode_tps);
    rss.push_back(ours.peak_rss_mib / reference.peak_rss_mib);
  }
  std::printf("safetensors.cpp / llama.cpp over %d pairs:\n", o.pairs);
  print_ratio("prefill tokens/s", prefill);
  print_ratio("decode tokens/s", decode);
  print_ratio("load time (lower=faster)", load);
  print_ratio("peak RSS", rss);
  if (!o.label.empty()) {
    std::printf("row %s: prefill %s decode %s load %s rss %s\n", o.label.c_str(),
                min_median_max(prefill).c_str(), min_median_max(decode).c_str(),
                min_median_max(load).c_str(), min_median_max(rss).c_str());
  }
  return 0;
}
