// The CLIP BPE tokenizer, read from the model's vocab.json + merges.txt: whitespace collapsed,
// lower-cased, split by CLIP's pattern, bytes mapped to printable characters, words marked
// with "</w>" at their end, merged by rank; the start and end tokens around, padded to the
// context length.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "status.h"

namespace dcpp {

class ClipTokenizer {
 public:
  // `dir` holds vocab.json and merges.txt.
  static std::unique_ptr<ClipTokenizer> load(const std::string& dir, Failure* failure);
  ~ClipTokenizer();

  // The BPE tokens of `text`, without start/end.
  std::vector<int32_t> encode(const std::string& text) const;
  // start + tokens (truncated to fit) + end, padded with `pad` to `context` ids.
  std::vector<int32_t> encode_padded(const std::string& text, int context, int32_t pad) const;
  int32_t start_token() const { return start_; }
  int32_t end_token() const { return end_; }
  int32_t max_id() const { return max_id_; }
  // A token's id; -1 when the vocabulary lacks it.
  int32_t id_of(const std::string& token) const {
    auto it = vocab_.find(token);
    return it == vocab_.end() ? -1 : it->second;
  }

 private:
  ClipTokenizer() = default;
  std::vector<std::string> bpe(const std::string& word) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::map<std::pair<std::string, std::string>, int> ranks_;
  std::vector<std::string> byte_chars_;  // byte -> its printable UTF-8 stand-in
  int32_t start_ = -1, end_ = -1, max_id_ = 0;
  void* pattern_ = nullptr;  // pcre2_code
};

}  // namespace dcpp
