// Writes the tiny random llama GGUF the tests serve: allm-make-fixture --out PATH [--seed N]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "demo/tiny_gguf.h"

int main(int argc, char** argv) {
  std::string out;
  allm::TinyLlamaSpec spec;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--out") && i + 1 < argc) {
      out = argv[++i];
    } else if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) {
      spec.seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      std::fprintf(stderr, "usage: allm-make-fixture --out PATH.gguf [--seed N]\n");
      return 2;
    }
  }
  if (out.empty()) {
    std::fprintf(stderr, "usage: allm-make-fixture --out PATH.gguf [--seed N]\n");
    return 2;
  }
  std::string error;
  if (!allm::write_tiny_llama_gguf(out, spec, &error)) {
    std::fprintf(stderr, "allm-make-fixture: %s\n", error.c_str());
    return 1;
  }
  return 0;
}
