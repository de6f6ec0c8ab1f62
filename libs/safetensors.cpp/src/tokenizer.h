// Hugging Face `tokenizer.json` tokenizers: BPE (byte-level and SentencePiece-style), the
// normalizers, pre-tokenizers, post-processors and decoders that LLM checkpoints use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace stcpp {

class Tokenizer {
 public:
  // Reads `folder`/tokenizer.json and, when present, tokenizer_config.json (special tokens,
  // add_bos, chat template). Returns null with a message naming the problem.
  static std::unique_ptr<Tokenizer> load(const std::string& folder, std::string* error);
  virtual ~Tokenizer() = default;

  // Like HF `tokenizer.encode(text, add_special_tokens=...)`: added/special tokens written in
  // the text are recognised; the post-processor's bos/eos are added when add_special_tokens.
  virtual std::vector<int32_t> encode(const std::string& text, bool add_special_tokens) const = 0;
  // Like HF `tokenizer.decode(ids, skip_special_tokens=...)`.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const = 0;
  // The bytes one token adds to generated text, for streaming (byte-level bytes, "▁" as a
  // space, <0xNN> byte fallback); may be part of a UTF-8 character.
  virtual std::string token_bytes(int32_t id) const = 0;
  // Id of a token by its content (vocabulary or added tokens), -1 when absent.
  virtual int32_t token_id(const std::string& content) const = 0;
  virtual bool is_special(int32_t id) const = 0;
  virtual int32_t size() const = 0;  // highest id + 1

  // From tokenizer_config.json ("" / -1 when not given).
  virtual const std::string& chat_template() const = 0;
  virtual const std::string& bos_token() const = 0;
  virtual const std::string& eos_token() const = 0;
  virtual bool add_bos() const = 0;
};

}  // namespace stcpp
