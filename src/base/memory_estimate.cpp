#include "base/memory_estimate.h"

#include "base/byte_size.h"

namespace allm {

std::string MemoryEstimate::breakdown() const {
  std::string out = "weights " + format_bytes(weights);
  if (kv_cache) out += ", KV cache " + format_bytes(kv_cache);
  if (compute) out += ", compute " + format_bytes(compute);
  if (!note.empty()) out += ", " + note;
  return out;
}

uint64_t file_size_or_zero(const std::filesystem::path& path) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

}  // namespace allm
