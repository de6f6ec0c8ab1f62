#include "clip_tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <fstream>
#include <sstream>

#include "nlohmann/json.hpp"

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
  std::vector<std::pair<std::string, int64_t>> tokens;
  for (auto& [token, id] : vocab.items())  // not an integer: an invalid id
    tokens.emplace_back(token, id.is_number_integer() ? id.get<int64_t>() : -1);
  std::vector<std::pair<std::string, std::string>> merges;
  std::string line;
  while (std::getline(merges_file, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    const size_t space = line.find(' ');
    if (space != std::string::npos)
      merges.emplace_back(line.substr(0, space), line.substr(space + 1));
  }
  try {
    stcpp::BpeOptions options;
    options.end_of_word_suffix = "</w>";
    t->bpe_ = std::make_unique<stcpp::Bpe>(tokens, merges, options);
  } catch (const std::exception& e) {
    *failure = fail(DIFFUSION_LOAD_FAILED, dir + "/vocab.json: " + e.what());
    return nullptr;
  }
  t->start_ = t->id_of("<|startoftext|>");
  t->end_ = t->id_of("<|endoftext|>");
  if (t->start_ < 0 || t->end_ < 0) {
    *failure =
        fail(DIFFUSION_LOAD_FAILED, dir + "/vocab.json lacks <|startoftext|> or <|endoftext|>");
    return nullptr;
  }
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
    for (size_t i = ov[0]; i < ov[1]; ++i)
      word += stcpp::byte_to_unicode(static_cast<uint8_t>(s[i]));
    const std::vector<int32_t> pieces = bpe_->tokenize(word);
    ids.insert(ids.end(), pieces.begin(), pieces.end());
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
