// allm-make-sd-fixture DIR [--sd15]: a Stable Diffusion 1.x single-file checkpoint with random
// weights in DIR/model.safetensors and its CLIP tokenizer in DIR/tokenizer/. Tiny by default
// (tests); --sd15 gives SD 1.5's dimensions in F16 (the benchmark model, about 2 GB).
#include <cstdio>
#include <cstring>
#include <string>

#include "demo/tiny_sd.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3 || (argc == 3 && std::strcmp(argv[2], "--sd15") != 0)) {
    std::fprintf(stderr, "usage: %s DIR [--sd15]\n", argv[0]);
    return 2;
  }
  const allm::TinySdSpec spec = argc == 3 ? allm::sd15_dimensions() : allm::TinySdSpec{};
  std::string error;
  if (!allm::write_tiny_sd(argv[1], spec, &error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  return 0;
}
