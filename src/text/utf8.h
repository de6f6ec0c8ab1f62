// UTF-8 helpers for streaming text that arrives as token bytes.
#pragma once

#include <string>

namespace allm {

// Bytes at the end of `text` that start a UTF-8 character not yet complete (0 if none).
size_t incomplete_utf8_tail(const std::string& text);

// Whether `text` is valid UTF-8 up to a last character that may be incomplete (but valid so far).
bool is_utf8_prefix(const std::string& text);

// Replaces every invalid UTF-8 sequence with U+FFFD so the text can go into JSON.
std::string sanitize_utf8(const std::string& text);

}  // namespace allm
