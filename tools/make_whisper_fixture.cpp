// Writes a whisper model with random weights in whisper.cpp's ggml .bin format:
//   allm-make-whisper-fixture --out PATH.bin [--tiny] [--seed N]
// --tiny gives the dimensions of whisper "tiny" (for benchmarks); the default is a very small
// model for tests. Both decode 30 s windows like real whisper models.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "demo/tiny_whisper.h"

static int usage() {
  std::fprintf(stderr, "usage: allm-make-whisper-fixture --out PATH.bin [--tiny] [--seed N]\n");
  return 2;
}

int main(int argc, char** argv) {
  std::string out;
  allm::TinyWhisperSpec spec;
  uint64_t seed = spec.seed;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--out") && i + 1 < argc) {
      out = argv[++i];
    } else if (!std::strcmp(argv[i], "--tiny")) {
      spec = allm::whisper_tiny_dimensions();
    } else if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      return usage();
    }
  }
  if (out.empty()) return usage();
  spec.seed = seed;
  std::string error;
  if (!allm::write_tiny_whisper_bin(out, spec, &error)) {
    std::fprintf(stderr, "allm-make-whisper-fixture: %s\n", error.c_str());
    return 1;
  }
  return 0;
}
