// The pipeline stages of a Hugging Face tokenizer.json, each built from its JSON object:
// normalizer -> pre-tokenizer -> (model, see tokenizer_bpe.h) -> post-processor, and the
// decoder for the way back. Builders throw ComponentError naming the component they reject.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"

namespace stcpp::tok {

using json = nlohmann::json;

struct ComponentError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A string field of `j`, or `fallback` when absent/null; throws when of another type.
std::string json_string(const json& j, const char* key, const std::string& fallback,
                        const char* component);
bool json_bool(const json& j, const char* key, bool fallback, const char* component);

// A PCRE2 regex (UTF + UCP). Thread-safe: match data is made per call.
class Regex {
 public:
  Regex(const std::string& pattern, const char* component);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Every non-overlapping match as [begin, end) byte offsets, left to right.
  std::vector<std::pair<size_t, size_t>> find_all(const std::string& text) const;

 private:
  void* code_ = nullptr;  // pcre2_code_8*
};
std::string regex_escape(const std::string& literal);
// The pattern of a {"String": ...} or {"Regex": ...} object.
std::string pattern_of(const json& pattern, const char* component);

// A slice of the input under pre-tokenization. `at_start`: it begins at offset 0 of the
// original text (Metaspace's prepend_scheme "first" needs this).
struct Piece {
  std::string text;
  bool at_start = false;
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(const std::string& text) const = 0;
};
std::unique_ptr<Normalizer> make_normalizer(const json& j);  // null for a null json

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual std::vector<Piece> split(const Piece& piece) const = 0;
};
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j);  // null for a null json

// Splits `piece` by the matches of `regex` the way the HF `Split` pre-tokenizer does.
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
std::vector<Piece> split_by_regex(const Piece& piece, const Regex& regex, SplitBehavior behavior,
                                  bool invert);

class Decoder {
 public:
  virtual ~Decoder() = default;
  // HF `decode_chain`: tokens in, tokens out; the caller concatenates the result.
  virtual std::vector<std::string> decode_chain(std::vector<std::string> tokens) const = 0;
};
// `added`: contents of the added tokens, which the ByteLevel decoder passes through as they are.
std::unique_ptr<Decoder> make_decoder(const json& j,
                                      std::shared_ptr<const std::unordered_set<std::string>> added);
// null for a null json

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds the special tokens of a single sequence (only called with add_special_tokens).
  virtual std::vector<int32_t> process(std::vector<int32_t> ids) const = 0;
};
std::unique_ptr<PostProcessor> make_post_processor(const json& j);  // null for a null json

}  // namespace stcpp::tok
