// Writes tensors as safetensors: an 8-byte little-endian header length, a JSON header naming
// each tensor's dtype, shape and [begin, end) byte range, then the raw little-endian data.
#pragma once

#include <string>
#include <vector>

#include "hf_fixture/model_spec.h"

namespace allm::fixture {

// One file holding `tensors` in the given order, all stored as `dtype`.
bool write_safetensors_file(const std::string& path, const std::vector<const Tensor*>& tensors,
                            DType dtype, std::string* error);

// `model.safetensors`, or with shards > 1 the files `model-0000i-of-0000N.safetensors` plus
// `model.safetensors.index.json` whose weight_map names each tensor's file.
bool write_safetensors_checkpoint(const std::string& dir, const std::vector<Tensor>& tensors,
                                  DType dtype, int shards, std::string* error);

}  // namespace allm::fixture
