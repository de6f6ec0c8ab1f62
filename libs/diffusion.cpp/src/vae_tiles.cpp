#include "vae_tiles.h"

#include <algorithm>
#include <cstddef>

namespace dcpp {

std::vector<TileSpan> tile_spans(int length, int tile) {
  if (length <= tile) return {{0, length}};
  const int stride = std::max(1, tile - tile / 4);
  std::vector<TileSpan> spans;
  for (int start = 0;; start += stride) {
    if (start + tile >= length) {
      spans.push_back({length - tile, tile});
      return spans;
    }
    spans.push_back({start, tile});
  }
}

namespace {

// A tile's weight at `offset` image pixels into its span: rising from near 0 to 1 over `ramp`
// pixels from each side that another tile overlaps, 1 along the image's own edges.
float ramp_weight(int offset, int size, bool before, bool after, int ramp) {
  float weight = 1.0f;
  if (before) weight = std::min(weight, (offset + 0.5f) / ramp);
  if (after) weight = std::min(weight, (size - offset - 0.5f) / ramp);
  return weight;
}

// The latent pixels of one tile, [C, span_y.size, span_x.size].
std::vector<float> crop(const std::vector<float>& latent, int channels, int w, int h, TileSpan x,
                        TileSpan y) {
  std::vector<float> tile;
  tile.reserve(static_cast<size_t>(channels) * x.size * y.size);
  for (int c = 0; c < channels; ++c) {
    for (int row = y.start; row < y.start + y.size; ++row) {
      const float* from = latent.data() + (static_cast<size_t>(c) * h + row) * w + x.start;
      tile.insert(tile.end(), from, from + x.size);
    }
  }
  return tile;
}

}  // namespace

Failure decode_in_tiles(const std::vector<float>& latent, int channels, int w, int h, int factor,
                        int tile, const DecodeLatent& decode, std::vector<float>* image) {
  const int width = w * factor, height = h * factor, ramp = std::max(1, tile / 4 * factor);
  const size_t plane = static_cast<size_t>(width) * height;
  std::vector<float> sum(3 * plane, 0.0f), weight_sum(plane, 0.0f), piece;
  const std::vector<TileSpan> columns = tile_spans(w, tile), rows = tile_spans(h, tile);
  for (size_t ty = 0; ty < rows.size(); ++ty) {
    for (size_t tx = 0; tx < columns.size(); ++tx) {
      const TileSpan x = columns[tx], y = rows[ty];
      if (Failure f = decode(crop(latent, channels, w, h, x, y), x.size, y.size, &piece)) return f;
      const int piece_w = x.size * factor, piece_h = y.size * factor;
      for (int py = 0; py < piece_h; ++py) {
        const float wy = ramp_weight(py, piece_h, ty > 0, ty + 1 < rows.size(), ramp);
        for (int px = 0; px < piece_w; ++px) {
          const float weight = wy * ramp_weight(px, piece_w, tx > 0, tx + 1 < columns.size(), ramp);
          const size_t at =
              static_cast<size_t>(y.start * factor + py) * width + x.start * factor + px;
          weight_sum[at] += weight;
          for (int c = 0; c < 3; ++c) {
            sum[c * plane + at] +=
                weight * piece[(static_cast<size_t>(c) * piece_h + py) * piece_w + px];
          }
        }
      }
    }
  }
  for (size_t c = 0; c < 3; ++c) {
    for (size_t i = 0; i < plane; ++i) sum[c * plane + i] /= weight_sum[i];
  }
  *image = std::move(sum);
  return {};
}

}  // namespace dcpp
