// Tiled VAE decoding: the latent cut into overlapping tiles, each decoded on its own, the images
// blended with weights that ramp linearly across each overlap, so no seam shows a tile's edge.
#pragma once

#include <functional>
#include <vector>

#include "status.h"

namespace dcpp {

// A tile along one side of the latent: its first latent pixel and its length.
struct TileSpan {
  int start = 0;
  int size = 0;
};

// Tiles of `tile` pixels covering `length`: starting every 3/4 tile, the last moved back to end at
// the edge; one span of `length` when the side fits in a tile.
std::vector<TileSpan> tile_spans(int length, int tile);

// Decodes a latent [C, H, W] to an image [3, H*factor, W*factor].
using DecodeLatent = std::function<Failure(const std::vector<float>& latent, int w, int h,
                                           std::vector<float>* image)>;

Failure decode_in_tiles(const std::vector<float>& latent, int channels, int w, int h, int factor,
                        int tile, const DecodeLatent& decode, std::vector<float>* image);

}  // namespace dcpp
