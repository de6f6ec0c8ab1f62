#include "png.h"

#include <zlib.h>

#include <vector>

namespace dcpp {

namespace {

void put_u32(std::string& out, uint32_t v) {
  out += static_cast<char>(v >> 24);
  out += static_cast<char>(v >> 16);
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v);
}

void put_chunk(std::string& out, const char* type, const std::string& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  const std::string body = std::string(type, 4) + data;
  out += body;
  put_u32(out, static_cast<uint32_t>(
                   crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size())));
}

}  // namespace

std::string encode_png(const uint8_t* rgb, int width, int height) {
  const size_t stride = static_cast<size_t>(width) * 3;
  std::vector<uint8_t> filtered;
  filtered.reserve((stride + 1) * height);
  for (int y = 0; y < height; ++y) {
    const uint8_t* row = rgb + y * stride;
    filtered.push_back(1);  // Sub: each byte minus the one a pixel to the left
    for (size_t i = 0; i < stride; ++i) {
      filtered.push_back(static_cast<uint8_t>(row[i] - (i >= 3 ? row[i - 3] : 0)));
    }
  }
  uLongf packed_size = compressBound(filtered.size());
  std::string packed(packed_size, '\0');
  if (compress2(reinterpret_cast<Bytef*>(packed.data()), &packed_size, filtered.data(),
                filtered.size(), 6) != Z_OK) {
    return {};
  }
  packed.resize(packed_size);
  std::string header;
  put_u32(header, static_cast<uint32_t>(width));
  put_u32(header, static_cast<uint32_t>(height));
  header += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit, truecolour, deflate, no interlace
  std::string out = "\x89PNG\r\n\x1a\n";
  put_chunk(out, "IHDR", header);
  put_chunk(out, "IDAT", packed);
  put_chunk(out, "IEND", "");
  return out;
}

}  // namespace dcpp
