// Byte sizes as people write them (the --max-memory and --response-store-size flags) and as the
// logs and messages show them.
#pragma once

#include <cstdint>
#include <string>

namespace allm {

// "8G", "512M", "1.5GiB", "1024" → bytes (K/M/G/T are powers of 1024). False on anything else.
bool parse_byte_size(const std::string& text, uint64_t* bytes);
std::string format_bytes(uint64_t bytes);  // "1.50 GiB"

}  // namespace allm
