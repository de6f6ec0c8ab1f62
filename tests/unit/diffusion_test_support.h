// What diffusion.cpp's test files share: an owning model handle and per-process scratch folders.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "diffusion.h"

namespace allm::testing {

using ModelPtr = std::unique_ptr<diffusion_model, void (*)(diffusion_model*)>;

// A scratch folder path for `name`, unique to this process.
inline std::string sd_temp_dir(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("allm-sd-" + name + "-" + std::to_string(::getpid())))
      .string();
}

// Generates one image with `p`; the test fails (and the pixels are zeros) when it does not.
inline std::vector<uint8_t> generate_rgb(diffusion_model* m, const diffusion_generate_params& p) {
  std::vector<uint8_t> rgb(static_cast<size_t>(p.width) * p.height * 3);
  char message[256] = "";
  EXPECT_EQ(diffusion_generate(m, &p, rgb.data(), message, sizeof message), DIFFUSION_OK)
      << message;
  return rgb;
}

}  // namespace allm::testing
