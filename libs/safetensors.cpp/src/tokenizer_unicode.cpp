#include "tokenizer_unicode.h"

#include <algorithm>

#include "safetensors/utf8.h"
#include "tokenizer_unicode_tables.h"

namespace stcpp::unicode {

size_t utf8_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

std::vector<uint32_t> decode_utf8(const std::string& text) {
  std::vector<uint32_t> cps;
  cps.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    size_t n = std::min(utf8_len(lead), text.size() - i);
    uint32_t cp = n == 1 ? lead : lead & (0x7F >> n);
    for (size_t k = 1; k < n; ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3F);
    cps.push_back(cp);
    i += n;
  }
  return cps;
}

void append_utf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string encode_utf8(const std::vector<uint32_t>& cps) {
  std::string out;
  out.reserve(cps.size());
  for (uint32_t cp : cps) append_utf8(&out, cp);
  return out;
}

int byte_fallback_value(const std::string& token) {
  if (token.size() != 6 || token.compare(0, 3, "<0x") != 0 || token[5] != '>') return -1;
  int value = 0;
  for (size_t i = 3; i < 5; ++i) {
    const char c = token[i];
    const int digit = c >= '0' && c <= '9'   ? c - '0'
                      : c >= 'a' && c <= 'f' ? c - 'a' + 10
                      : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                             : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

bool is_whitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

namespace {

constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

uint8_t combining_class(uint32_t cp) {
  const auto* end = unitab::kCombiningClasses + unitab::kCombiningClassCount;
  const auto* it = std::lower_bound(unitab::kCombiningClasses, end, cp,
                                    [](const auto& e, uint32_t v) { return e.cp < v; });
  return it != end && it->cp == cp ? it->ccc : 0;
}

const unitab::Decomposition* find_decomposition(uint32_t cp) {
  const auto* end = unitab::kDecompositions + unitab::kDecompositionCount;
  const auto* it = std::lower_bound(unitab::kDecompositions, end, cp,
                                    [](const auto& e, uint32_t v) { return e.cp < v; });
  return it != end && it->cp == cp ? it : nullptr;
}

void decompose_into(uint32_t cp, bool compat, std::vector<uint32_t>* out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {  // Hangul syllables decompose algorithmically
    const uint32_t s = cp - kSBase;
    out->push_back(kLBase + s / kNCount);
    out->push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out->push_back(kTBase + s % kTCount);
    return;
  }
  const auto* d = find_decomposition(cp);
  if (!d || (d->compat && !compat)) {
    out->push_back(cp);
    return;
  }
  for (uint32_t k = 0; k < d->len; ++k)
    decompose_into(unitab::kCodePoints[d->start + k], compat, out);
}

// Canonical ordering: stable sort of each run of non-starters by combining class.
void reorder(std::vector<uint32_t>* cps) {
  auto& v = *cps;
  for (size_t i = 0; i < v.size();) {
    if (combining_class(v[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < v.size() && combining_class(v[j]) != 0) ++j;
    std::stable_sort(v.begin() + i, v.begin() + j, [](uint32_t a, uint32_t b) {
      return combining_class(a) < combining_class(b);
    });
    i = j;
  }
}

uint32_t compose_pair(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto* end = unitab::kCompositions + unitab::kCompositionCount;
  const auto* it = std::lower_bound(unitab::kCompositions, end, std::make_pair(a, b),
                                    [](const auto& e, const std::pair<uint32_t, uint32_t>& v) {
                                      return std::make_pair(e.first, e.second) < v;
                                    });
  return it != end && it->first == a && it->second == b ? it->composed : 0;
}

// The canonical composition algorithm (UAX #15): each character composes with the last
// starter unless blocked by a character of the same or higher combining class.
void compose(std::vector<uint32_t>* cps) {
  auto& v = *cps;
  size_t out = 0;
  long starter = -1;  // index in the output of the last starter, -1 before the first one
  int last_ccc = -1;  // class of the last character kept after that starter, -1: none
  for (size_t i = 0; i < v.size(); ++i) {
    const uint32_t cp = v[i];
    const int ccc = combining_class(cp);
    const bool blocked = last_ccc != -1 && (last_ccc == 0 || last_ccc >= ccc);
    if (starter >= 0 && !blocked) {
      if (const uint32_t composed = compose_pair(v[starter], cp)) {
        v[starter] = composed;
        continue;
      }
    }
    if (ccc == 0) {
      starter = static_cast<long>(out);
      last_ccc = -1;
    } else {
      last_ccc = ccc;
    }
    v[out++] = cp;
  }
  v.resize(out);
}

}  // namespace

std::string normalize(const std::string& text, Form form) {
  bool ascii = std::all_of(text.begin(), text.end(), [](char c) { return (c & 0x80) == 0; });
  if (ascii) return text;
  const bool compat = form == Form::NFKC || form == Form::NFKD;
  std::vector<uint32_t> cps;
  for (uint32_t cp : decode_utf8(text)) decompose_into(cp, compat, &cps);
  reorder(&cps);
  if (form == Form::NFC || form == Form::NFKC) compose(&cps);
  return encode_utf8(cps);
}

std::string to_lower(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  const auto* end = unitab::kLowercase + unitab::kLowercaseCount;
  for (uint32_t cp : decode_utf8(text)) {
    const auto* it = std::lower_bound(unitab::kLowercase, end, cp,
                                      [](const auto& e, uint32_t v) { return e.cp < v; });
    if (it == end || it->cp != cp) {
      append_utf8(&out, cp);
      continue;
    }
    for (uint32_t k = 0; k < it->len; ++k) append_utf8(&out, unitab::kCodePoints[it->start + k]);
  }
  return out;
}

}  // namespace stcpp::unicode

namespace stcpp {

Utf8Sequence utf8_sequence_at(const std::string& text, size_t at) {
  const auto lead = static_cast<unsigned char>(text[at]);
  if (lead < 0x80) return {1, true, false};
  size_t n;
  // The second byte's range excludes overlong forms, surrogates and code points past U+10FFFF.
  unsigned char lo = 0x80, hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return {1, false, false};
  }
  for (size_t k = 1; k < n; ++k) {
    if (at + k >= text.size()) return {k, false, true};
    const auto b = static_cast<unsigned char>(text[at + k]);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return {k, false, false};
  }
  return {n, true, false};
}

std::string to_valid_utf8(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    const Utf8Sequence seq = utf8_sequence_at(bytes, i);
    if (seq.valid) {
      out.append(bytes, i, seq.length);
    } else {
      out += "\xEF\xBF\xBD";
    }
    i += seq.length;
  }
  return out;
}

bool is_valid_utf8(const std::string& bytes) {
  for (size_t i = 0; i < bytes.size();) {
    const Utf8Sequence seq = utf8_sequence_at(bytes, i);
    if (!seq.valid) return false;
    i += seq.length;
  }
  return true;
}

}  // namespace stcpp
