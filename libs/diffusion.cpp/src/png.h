// A minimal PNG encoder: 8-bit RGB, one IDAT, every row with the Sub filter, zlib-compressed.
#pragma once

#include <cstdint>
#include <string>

namespace dcpp {

std::string encode_png(const uint8_t* rgb, int width, int height);

}  // namespace dcpp
