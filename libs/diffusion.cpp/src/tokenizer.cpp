#include "tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <climits>
#include <fstream>
#include <sstream>

#include "nlohmann/json.hpp"
#include "tokenizer_components.h"  // safetensors.cpp

namespace dcpp {

namespace {

// CLIP's pre-tokenizer pattern (case-insensitive; the text is lower-cased first anyway).
const char* kPattern =
    "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|"
    "[^\\s\\p{L}\\p{N}]+";

// Collapses whitespace runs to one space, trims, lower-cases ASCII.
std::string clean(const std::string& text) {
  std::string out;
  bool space = false;
  for (unsigned char c : text) {
    if (std::isspace(c)) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += static_cast<char>(c < 0x80 ? std::tolower(c) : c);
  }
  return out;
}

// Splits UTF-8 into characters.
std::vector<std::string> characters(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = s[i];
    const size_t n = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace

std::unique_ptr<ClipTokenizer> ClipTokenizer::load(const std::string& dir, Failure* failure) {
  std::unique_ptr<ClipTokenizer> t(new ClipTokenizer());
  std::ifstream vocab_file(dir + "/vocab.json"), merges_file(dir + "/merges.txt");
  if (!vocab_file || !merges_file) {
    *failure = fail(DIFFUSION_LOAD_FAILED,
                    "the CLIP tokenizer files are missing: put vocab.json and merges.txt (from "
                    "the model's tokenizer/ folder) in " +
                        dir);
    return nullptr;
  }
  nlohmann::json vocab = nlohmann::json::parse(vocab_file, nullptr, false);
  if (!vocab.is_object()) {
    *failure = fail(DIFFUSION_LOAD_FAILED, dir + "/vocab.json is not a JSON object");
    return nullptr;
  }
  for (auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX) {
      *failure = fail(DIFFUSION_LOAD_FAILED, dir + "/vocab.json: bad id for '" + token + "'");
      return nullptr;
    }
    t->vocab_[token] = id.get<int32_t>();
    t->max_id_ = std::max(t->max_id_, id.get<int32_t>());
  }
  std::string line;
  int rank = 0;
  while (std::getline(merges_file, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    const size_t space = line.find(' ');
    if (space == std::string::npos) continue;
    t->ranks_.emplace(std::make_pair(line.substr(0, space), line.substr(space + 1)), rank++);
  }
  auto start = t->vocab_.find("<|startoftext|>"), end = t->vocab_.find("<|endoftext|>");
  if (start == t->vocab_.end() || end == t->vocab_.end()) {
    *failure =
        fail(DIFFUSION_LOAD_FAILED, dir + "/vocab.json lacks <|startoftext|> or <|endoftext|>");
    return nullptr;
  }
  t->start_ = start->second;
  t->end_ = end->second;
  t->byte_chars_.resize(256);  // GPT-2's bytes_to_unicode
  for (int b = 0; b < 256; ++b) t->byte_chars_[b] = stcpp::tok::byte_to_unicode(uint8_t(b));
  int error = 0;
  PCRE2_SIZE offset = 0;
  t->pattern_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &error, &offset, nullptr);
  if (!t->pattern_) {
    *failure = fail(DIFFUSION_INTERNAL, "cannot compile the CLIP pattern");
    return nullptr;
  }
  return t;
}

ClipTokenizer::~ClipTokenizer() {
  if (pattern_) pcre2_code_free(static_cast<pcre2_code*>(pattern_));
}

std::vector<std::string> ClipTokenizer::bpe(const std::string& word) const {
  std::vector<std::string> parts = characters(word);
  if (parts.empty()) return parts;
  parts.back() += "</w>";
  while (parts.size() > 1) {
    int best = INT32_MAX;
    size_t at = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      auto it = ranks_.find({parts[i], parts[i + 1]});
      if (it != ranks_.end() && it->second < best) best = it->second, at = i;
    }
    if (best == INT32_MAX) break;
    const std::string left = parts[at], right = parts[at + 1];
    // Merge every occurrence of the pair, left to right, as the reference does.
    std::vector<std::string> merged;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i + 1 < parts.size() && parts[i] == left && parts[i + 1] == right) {
        merged.push_back(left + right);
        ++i;
      } else {
        merged.push_back(parts[i]);
      }
    }
    parts.swap(merged);
  }
  return parts;
}

std::vector<int32_t> ClipTokenizer::encode(const std::string& text) const {
  const std::string s = clean(text);
  auto* code = static_cast<pcre2_code*>(pattern_);
  pcre2_match_data* match = pcre2_match_data_create_from_pattern(code, nullptr);
  std::vector<int32_t> ids;
  PCRE2_SIZE pos = 0;
  while (pos < s.size()) {
    const int rc =
        pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos, 0, match, nullptr);
    if (rc < 0) break;
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(match);
    if (ov[1] == ov[0]) {
      pos = ov[1] + 1;
      continue;
    }
    std::string word;
    for (size_t i = ov[0]; i < ov[1]; ++i) word += byte_chars_[static_cast<unsigned char>(s[i])];
    for (const std::string& piece : bpe(word)) {
      auto it = vocab_.find(piece);
      if (it != vocab_.end()) ids.push_back(it->second);
    }
    pos = ov[1];
  }
  pcre2_match_data_free(match);
  return ids;
}

std::vector<int32_t> ClipTokenizer::encode_padded(const std::string& text, int context,
                                                  int32_t pad) const {
  std::vector<int32_t> ids = encode(text);
  if (static_cast<int>(ids.size()) > context - 2) ids.resize(context - 2);
  ids.insert(ids.begin(), start_);
  ids.push_back(end_);
  ids.resize(context, pad);
  return ids;
}

}  // namespace dcpp
