// The CLIP BPE tokenizer, read from the model's vocab.json + merges.txt: whitespace collapsed,
// lower-cased, split by CLIP's pattern, bytes mapped to printable characters, then
// safetensors.cpp's byte-level BPE (words marked with "</w>" at their end, merged by rank); the
// start and end tokens around, padded to the context length.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "safetensors/bpe.h"
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
  int32_t end_token() const { return end_; }
  int32_t max_id() const { return bpe_->end_id() - 1; }
  // A token's id; -1 when the vocabulary lacks it.
  int32_t id_of(const std::string& token) const { return bpe_->id_of(token); }

 private:
  ClipTokenizer() = default;

  std::unique_ptr<stcpp::Bpe> bpe_;
  int32_t start_ = -1, end_ = -1;
  void* pattern_ = nullptr;  // pcre2_code
};

}  // namespace dcpp
