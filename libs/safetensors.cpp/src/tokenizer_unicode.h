// UTF-8 and Unicode helpers for the tokenizer: decoding/encoding code points, Unicode
// normalization forms and lowercasing from the generated tables in tokenizer_unicode_tables.cpp.
// (UTF-8 repair is public: safetensors/utf8.h.)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace stcpp::unicode {

// Length of the UTF-8 sequence that starts with `lead` (1 for a stray byte).
size_t utf8_len(unsigned char lead);
std::vector<uint32_t> decode_utf8(const std::string& text);  // input must be valid UTF-8
void append_utf8(std::string* out, uint32_t cp);
std::string encode_utf8(const std::vector<uint32_t>& cps);

// The byte a SentencePiece byte-fallback token "<0xNN>" stands for; -1 for any other token
// (a vocabulary may hold "<0xZZ>": it is an ordinary token then).
int byte_fallback_value(const std::string& token);

bool is_whitespace(uint32_t cp);  // Unicode White_Space, like Rust's char::is_whitespace

enum class Form { NFC, NFD, NFKC, NFKD };
std::string normalize(const std::string& text, Form form);
std::string to_lower(const std::string& text);

}  // namespace stcpp::unicode
