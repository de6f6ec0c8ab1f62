#include "tokenizer_added.h"

#include <cctype>

#include "tokenizer_components.h"
#include "tokenizer_unicode.h"

namespace stcpp::tok {

namespace {

// Word characters for single_word: Unicode letters and numbers (Rust's is_alphanumeric) and '_'.
bool is_word_char(uint32_t cp) {
  if (cp < 0x80) return std::isalnum(static_cast<int>(cp)) || cp == '_';
  static const Regex word("^[\\p{L}\\p{N}]$", "added token word check");
  std::string text;
  unicode::append_utf8(&text, cp);
  return !word.find_all(text).empty();
}

uint32_t last_char(const std::string& s, size_t end) {
  size_t begin = end;
  while (begin > 0 && (static_cast<unsigned char>(s[begin - 1]) & 0xC0) == 0x80) --begin;
  if (begin > 0) --begin;
  auto cps = unicode::decode_utf8(s.substr(begin, end - begin));
  return cps.empty() ? 0 : cps.back();
}

uint32_t first_char(const std::string& s, size_t begin) {
  const size_t n = unicode::utf8_len(static_cast<unsigned char>(s[begin]));
  auto cps = unicode::decode_utf8(s.substr(begin, n));
  return cps.empty() ? 0 : cps.front();
}

// Start of the whitespace run that ends at `end` (never before `floor`).
size_t skip_whitespace_back(const std::string& s, size_t end, size_t floor) {
  while (end > floor) {
    size_t begin = end - 1;
    while (begin > floor && (static_cast<unsigned char>(s[begin]) & 0xC0) == 0x80) --begin;
    if (!unicode::is_whitespace(first_char(s, begin))) break;
    end = begin;
  }
  return end;
}

size_t skip_whitespace_forward(const std::string& s, size_t begin) {
  while (begin < s.size() && unicode::is_whitespace(first_char(s, begin)))
    begin += unicode::utf8_len(static_cast<unsigned char>(s[begin]));
  return begin;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(std::vector<std::string> patterns,
                                     std::vector<AddedToken> tokens)
    : tokens_(std::move(tokens)) {
  nodes_.emplace_back();
  for (size_t i = 0; i < patterns.size(); ++i)
    if (!patterns[i].empty()) insert(patterns[i], static_cast<int>(i));
}

void AddedTokenMatcher::insert(const std::string& pattern, int token) {
  int node = 0;
  for (unsigned char c : pattern) {
    int child = -1;
    for (auto [byte, index] : nodes_[node].children)
      if (byte == c) child = index;
    if (child < 0) {
      child = static_cast<int>(nodes_.size());
      nodes_[node].children.emplace_back(c, child);
      nodes_.emplace_back();
    }
    node = child;
  }
  if (nodes_[node].token < 0) nodes_[node].token = token;  // the first of duplicates wins
}

int AddedTokenMatcher::longest_at(const std::string& text, size_t pos, size_t* end) const {
  int node = 0, found = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    int child = -1;
    for (auto [byte, index] : nodes_[node].children)
      if (byte == static_cast<unsigned char>(text[i])) child = index;
    if (child < 0) break;
    node = child;
    if (nodes_[node].token >= 0) {
      found = nodes_[node].token;
      *end = i + 1;
    }
  }
  return found;
}

std::vector<Segment> AddedTokenMatcher::split(const std::string& text) const {
  std::vector<Segment> out;
  size_t emitted = 0;  // end of what `out` covers
  for (size_t pos = 0; pos < text.size();) {
    size_t end = 0;
    const int index = empty() ? -1 : longest_at(text, pos, &end);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[index];
    size_t begin = pos;
    pos = end;  // like the Aho-Corasick iterator, the search resumes after this match
    if (token.single_word) {
      const bool word_before = begin > 0 && is_word_char(last_char(text, begin));
      const bool word_after = end < text.size() && is_word_char(first_char(text, end));
      if (word_before || word_after) continue;
    }
    if (token.lstrip) begin = skip_whitespace_back(text, begin, emitted);
    if (token.rstrip) end = skip_whitespace_forward(text, end);
    if (begin > emitted) out.push_back({text.substr(emitted, begin - emitted), -1, emitted});
    out.push_back({text.substr(begin, end - begin), token.id, begin});
    emitted = end;
    pos = end;
  }
  if (emitted < text.size()) out.push_back({text.substr(emitted), -1, emitted});
  return out;
}

}  // namespace stcpp::tok
