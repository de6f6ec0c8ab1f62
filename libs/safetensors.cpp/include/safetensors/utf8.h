// UTF-8 validity and lossy repair (each maximal invalid subsequence becomes one U+FFFD, as in
// Rust's String::from_utf8_lossy and the WHATWG decoder): the tokenizer's, and a server's that
// streams token bytes as text.
#pragma once

#include <cstddef>
#include <string>

namespace stcpp {

// The UTF-8 sequence that starts at text[at].
struct Utf8Sequence {
  size_t length = 0;       // bytes: the character, or the maximal invalid subpart (at least 1)
  bool valid = false;      // the bytes are one whole character
  bool truncated = false;  // a valid start of a character that the end of the text cuts off
};
Utf8Sequence utf8_sequence_at(const std::string& text, size_t at);

std::string to_valid_utf8(const std::string& bytes);
bool is_valid_utf8(const std::string& bytes);

}  // namespace stcpp
