// SHA-256 of files, as the Hub's LFS oids name them (lowercase hex).
#pragma once

#include <filesystem>
#include <string>

namespace allm {

// "" when the file cannot be read.
std::string sha256_file_hex(const std::filesystem::path& path);
std::string sha256_hex(const std::string& data);
// 64 lowercase hex digits.
bool is_sha256_hex(const std::string& text);

}  // namespace allm
