// Decoders: token strings back to text. Each implements HF's decode_chain (tokens in, tokens
// out) so that a Sequence can chain them; the tokenizer concatenates the final tokens.
#include "safetensors/bpe.h"
#include "safetensors/utf8.h"
#include "tokenizer_components.h"
#include "tokenizer_unicode.h"

namespace stcpp::tok {

namespace {

using Tokens = std::vector<std::string>;

// Byte-level tokens -> bytes -> text (invalid UTF-8 replaced). Added tokens are kept as they
// are, as the reference implementations do.
class ByteLevelDec : public Decoder {
 public:
  explicit ByteLevelDec(std::shared_ptr<const std::unordered_set<std::string>> added)
      : added_(std::move(added)) {}
  Tokens decode_chain(Tokens tokens) const override {
    Tokens out;
    std::string bytes;
    auto flush = [&] {
      if (!bytes.empty()) out.push_back(to_valid_utf8(bytes));
      bytes.clear();
    };
    for (const std::string& token : tokens) {
      if (added_ && added_->count(token)) {
        flush();
        out.push_back(token);
        continue;
      }
      for (uint32_t cp : unicode::decode_utf8(token)) {
        const int b = unicode_to_byte(cp);
        if (b >= 0)
          bytes.push_back(static_cast<char>(b));
        else
          unicode::append_utf8(&bytes, cp);  // not a byte-level character: keep it
      }
    }
    flush();
    return out;
  }

 private:
  std::shared_ptr<const std::unordered_set<std::string>> added_;
};

class ReplaceDec : public Decoder {
 public:
  explicit ReplaceDec(const json& j)
      : regex_(pattern_of(j.value("pattern", json()), "Replace decoder"), "Replace decoder"),
        content_(json_string(j, "content", "", "Replace decoder")) {}
  Tokens decode_chain(Tokens tokens) const override {
    for (std::string& token : tokens) {
      std::string out;
      size_t prev = 0;
      for (auto [begin, end] : regex_.find_all(token)) {
        if (end == begin) continue;
        out.append(token, prev, begin - prev);
        out += content_;
        prev = end;
      }
      out.append(token, prev, std::string::npos);
      token = std::move(out);
    }
    return tokens;
  }

 private:
  Regex regex_;
  std::string content_;
};

// <0xNN> tokens -> bytes; a run of them that is not valid UTF-8 becomes one U+FFFD per byte
// (the Rust reference's rule).
class ByteFallbackDec : public Decoder {
 public:
  Tokens decode_chain(Tokens tokens) const override {
    Tokens out;
    std::string bytes;
    auto flush = [&] {
      if (bytes.empty()) return;
      if (is_valid_utf8(bytes)) {
        out.push_back(bytes);
      } else {
        for (size_t i = 0; i < bytes.size(); ++i) out.push_back("\xEF\xBF\xBD");
      }
      bytes.clear();
    };
    for (std::string& token : tokens) {
      const int byte = unicode::byte_fallback_value(token);
      if (byte >= 0) {
        bytes.push_back(static_cast<char>(byte));
        continue;
      }
      flush();
      out.push_back(std::move(token));
    }
    flush();
    return out;
  }
};

class FuseDec : public Decoder {
 public:
  Tokens decode_chain(Tokens tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    return {all};
  }
};

// Removes up to `start` leading and `stop` trailing copies of `content` (one character).
class StripDec : public Decoder {
 public:
  explicit StripDec(const json& j)
      : content_(json_string(j, "content", " ", "Strip decoder")),
        start_(j.value("start", 0)),
        stop_(j.value("stop", 0)) {}
  Tokens decode_chain(Tokens tokens) const override {
    if (content_.empty()) return tokens;
    for (std::string& token : tokens) {
      size_t begin = 0, end = token.size();
      for (int i = 0; i < start_ && token.compare(begin, content_.size(), content_) == 0; ++i)
        begin += content_.size();
      for (int i = 0; i < stop_ && end >= begin + content_.size() &&
                      token.compare(end - content_.size(), content_.size(), content_) == 0;
           ++i)
        end -= content_.size();
      token = token.substr(begin, end - begin);
    }
    return tokens;
  }

 private:
  std::string content_;
  int start_, stop_;
};

class MetaspaceDec : public Decoder {
 public:
  explicit MetaspaceDec(const json& j) {
    const char* c = "Metaspace decoder";
    replacement_ = json_string(j, "replacement", "\xE2\x96\x81", c);
    const bool legacy_prefix = json_bool(j, "add_prefix_space", true, c);
    strip_first_ =
        json_string(j, "prepend_scheme", legacy_prefix ? "always" : "never", c) != "never";
  }
  Tokens decode_chain(Tokens tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& token = tokens[i];
      for (size_t p = 0; p < token.size();) {
        if (!replacement_.empty() && token.compare(p, replacement_.size(), replacement_) == 0) {
          out += ' ';
          p += replacement_.size();
        } else {
          out += token[p++];
        }
      }
      if (i == 0 && strip_first_ && !out.empty() && out[0] == ' ') out.erase(0, 1);
      tokens[i] = std::move(out);
    }
    return tokens;
  }

 private:
  std::string replacement_;
  bool strip_first_ = true;
};

// BPEDecoder: the end-of-word suffix becomes a space (nothing after the last token).
class SuffixDec : public Decoder {
 public:
  explicit SuffixDec(const json& j) : suffix_(json_string(j, "suffix", "</w>", "BPEDecoder")) {}
  Tokens decode_chain(Tokens tokens) const override {
    for (size_t i = 0; i < tokens.size() && !suffix_.empty(); ++i) {
      const std::string with = i + 1 == tokens.size() ? "" : " ";
      std::string out;
      for (size_t p = 0; p < tokens[i].size();) {
        if (tokens[i].compare(p, suffix_.size(), suffix_) == 0) {
          out += with;
          p += suffix_.size();
        } else {
          out += tokens[i][p++];
        }
      }
      tokens[i] = std::move(out);
    }
    return tokens;
  }

 private:
  std::string suffix_;
};

class SequenceDec : public Decoder {
 public:
  SequenceDec(const json& j, const std::shared_ptr<const std::unordered_set<std::string>>& added) {
    auto it = j.find("decoders");
    if (it == j.end() || !it->is_array())
      throw ComponentError("Sequence decoder: 'decoders' is not an array");
    for (const json& child : *it)
      if (auto made = make_decoder(child, added)) steps_.push_back(std::move(made));
  }
  Tokens decode_chain(Tokens tokens) const override {
    for (const auto& step : steps_) tokens = step->decode_chain(std::move(tokens));
    return tokens;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

}  // namespace

std::unique_ptr<Decoder> make_decoder(
    const json& j, std::shared_ptr<const std::unordered_set<std::string>> added) {
  if (j.is_null()) return nullptr;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    throw ComponentError("decoder: not an object with a 'type'");
  const std::string type = j["type"].get<std::string>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDec>(std::move(added));
  if (type == "Replace") return std::make_unique<ReplaceDec>(j);
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDec>();
  if (type == "Fuse") return std::make_unique<FuseDec>();
  if (type == "Strip") return std::make_unique<StripDec>(j);
  if (type == "Metaspace") return std::make_unique<MetaspaceDec>(j);
  if (type == "BPEDecoder") return std::make_unique<SuffixDec>(j);
  if (type == "Sequence") return std::make_unique<SequenceDec>(j, added);
  throw ComponentError("decoder: unsupported type '" + type + "'");
}

}  // namespace stcpp::tok
