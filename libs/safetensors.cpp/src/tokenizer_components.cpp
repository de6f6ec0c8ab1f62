// Shared helpers of the tokenizer components: typed JSON access, the PCRE2 wrapper and the
// GPT-2 byte <-> code point map.
#include "tokenizer_components.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer_unicode.h"

namespace stcpp::tok {

std::string json_string(const json& j, const char* key, const std::string& fallback,
                        const char* component) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_string())
    throw ComponentError(std::string(component) + ": field '" + key + "' is not a string");
  return it->get<std::string>();
}

bool json_bool(const json& j, const char* key, bool fallback, const char* component) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean())
    throw ComponentError(std::string(component) + ": field '" + key + "' is not a boolean");
  return it->get<bool>();
}

Regex::Regex(const std::string& pattern, const char* component) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  auto* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                             PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (!code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    throw ComponentError(std::string(component) + ": regex " + pattern + " does not compile (" +
                         reinterpret_cast<const char*>(message) + " at offset " +
                         std::to_string(offset) + ")");
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // an optimisation only: failure is fine
  code_ = code;
}

Regex::~Regex() {
  pcre2_code_free(static_cast<pcre2_code*>(code_));
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(const std::string& text) const {
  std::vector<std::pair<size_t, size_t>> matches;
  auto* code = static_cast<pcre2_code*>(code_);
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(code, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0;
  while (offset <= text.size()) {
    // The text was made valid UTF-8 on entry to encode(), so the check can be skipped.
    const int rc =
        pcre2_match(code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, data, nullptr);
    if (rc < 0) break;  // no (further) match, or a match-limit error: stop splitting here
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(data);
    matches.emplace_back(ov[0], ov[1]);
    if (ov[1] > ov[0]) {
      offset = ov[1];
    } else {  // an empty match: step over one character so the loop advances
      if (ov[0] >= text.size()) break;
      offset = ov[0] + unicode::utf8_len(static_cast<unsigned char>(text[ov[0]]));
    }
  }
  pcre2_match_data_free(data);
  return matches;
}

std::string regex_escape(const std::string& literal) {
  std::string out;
  for (char c : literal) {
    if (std::string("\\^$.|?*+()[]{}-/#&~ ").find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

std::string pattern_of(const json& pattern, const char* component) {
  if (!pattern.is_object())
    throw ComponentError(std::string(component) + ": 'pattern' is not an object");
  if (pattern.contains("String") && pattern["String"].is_string())
    return regex_escape(pattern["String"].get<std::string>());
  if (pattern.contains("Regex") && pattern["Regex"].is_string())
    return pattern["Regex"].get<std::string>();
  throw ComponentError(std::string(component) + ": 'pattern' has neither String nor Regex");
}

}  // namespace stcpp::tok
