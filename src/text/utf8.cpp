#include "text/utf8.h"

namespace allm {

// Length of the sequence a lead byte starts, 0 for a byte that cannot lead.
static int sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 0;
}

static bool is_continuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

// Second-byte ranges that exclude overlongs, surrogates and code points above U+10FFFF.
static bool second_byte_ok(unsigned char lead, unsigned char second) {
  if (lead == 0xE0) return second >= 0xA0 && second <= 0xBF;
  if (lead == 0xED) return second >= 0x80 && second <= 0x9F;
  if (lead == 0xF0) return second >= 0x90 && second <= 0xBF;
  if (lead == 0xF4) return second >= 0x80 && second <= 0x8F;
  return is_continuation(second);
}

// Length of the longest valid start of a sequence at text[i] (its "maximal subpart"), and
// whether that is a whole character.
static size_t valid_prefix(const std::string& text, size_t i, bool* complete) {
  const auto lead = static_cast<unsigned char>(text[i]);
  const int need = sequence_length(lead);
  *complete = false;
  if (need == 0) return 0;
  size_t have = 1;
  for (; have < static_cast<size_t>(need) && i + have < text.size(); ++have) {
    const auto c = static_cast<unsigned char>(text[i + have]);
    const bool ok = have == 1 ? second_byte_ok(lead, c) : is_continuation(c);
    if (!ok) return have;
  }
  *complete = have == static_cast<size_t>(need);
  return have;
}

size_t incomplete_utf8_tail(const std::string& text) {
  const size_t start = text.size() > 3 ? text.size() - 3 : 0;
  for (size_t i = start; i < text.size(); ++i) {
    if (is_continuation(static_cast<unsigned char>(text[i]))) continue;
    bool complete = false;
    const size_t n = valid_prefix(text, i, &complete);
    if (n > 0 && !complete && i + n == text.size()) return n;
  }
  return 0;
}

bool is_utf8_prefix(const std::string& text) {
  for (size_t i = 0; i < text.size();) {
    bool complete = false;
    const size_t n = valid_prefix(text, i, &complete);
    if (!complete && (n == 0 || i + n != text.size())) return false;
    i += n;
  }
  return true;
}

std::string sanitize_utf8(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    bool complete = false;
    const size_t n = valid_prefix(text, i, &complete);
    if (complete) {
      out.append(text, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += n > 0 ? n : 1;
    }
  }
  return out;
}

}  // namespace allm
