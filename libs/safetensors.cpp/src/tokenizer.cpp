// stcpp::Tokenizer: tokenizer.json + tokenizer_config.json, assembled from the components in
// tokenizer_components.h, the BPE model and the added-token matcher.
#include "tokenizer.h"

#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "safetensors/utf8.h"
#include "tokenizer_added.h"
#include "tokenizer_bpe.h"
#include "tokenizer_components.h"
#include "tokenizer_unicode.h"

namespace stcpp {

namespace {

using tok::ComponentError;
using tok::json;

const char* const kSpm = "\xE2\x96\x81";  // "▁", SentencePiece's space

bool read_file(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  *out = buffer.str();
  return true;
}

json parse_json_file(const std::string& path, const char* what) {
  std::string text;
  if (!read_file(path, &text)) throw ComponentError(std::string(what) + ": cannot read " + path);
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    throw ComponentError(std::string(what) + ": " + path + " is not valid JSON");
  return j;
}

// "<bos>" or {"content": "<bos>", ...}; "" when absent or null.
std::string token_text(const json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  throw ComponentError(std::string("tokenizer_config.json: '") + key + "' is not a token");
}

// A string, or a list of {name, template} from which "default" (else the first) is taken.
std::string chat_template_of(const json& config) {
  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array()) {
    std::string first;
    for (const json& entry : *it) {
      if (!entry.is_object() || !entry.contains("template") || !entry["template"].is_string())
        continue;
      if (first.empty()) first = entry["template"].get<std::string>();
      if (entry.value("name", json()) == "default") return entry["template"].get<std::string>();
    }
    return first;
  }
  throw ComponentError("tokenizer_config.json: 'chat_template' is neither a string nor a list");
}

bool has_component_type(const json& j, const std::string& type) {
  if (j.is_object()) {
    if (j.value("type", json()) == type) return true;
    for (const auto& [key, value] : j.items())
      if (has_component_type(value, type)) return true;
  } else if (j.is_array()) {
    for (const json& v : j)
      if (has_component_type(v, type)) return true;
  }
  return false;
}

std::vector<tok::AddedToken> read_added_tokens(const json& list) {
  std::vector<tok::AddedToken> tokens;
  if (list.is_null()) return tokens;
  if (!list.is_array()) throw ComponentError("added_tokens: not an array");
  for (const json& t : list) {
    const char* c = "added_tokens";
    if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer() ||
        !t.contains("content") || !t["content"].is_string())
      throw ComponentError("added_tokens: an entry lacks 'id' or 'content'");
    tok::AddedToken a;
    a.content = t["content"].get<std::string>();
    a.id = t["id"].get<int32_t>();
    a.special = tok::json_bool(t, "special", false, c);
    a.single_word = tok::json_bool(t, "single_word", false, c);
    a.lstrip = tok::json_bool(t, "lstrip", false, c);
    a.rstrip = tok::json_bool(t, "rstrip", false, c);
    a.normalized = tok::json_bool(t, "normalized", !a.special, c);
    tokens.push_back(std::move(a));
  }
  return tokens;
}

class HfTokenizer : public Tokenizer {
 public:
  void load(const std::string& folder) {
    const json file = parse_json_file(folder + "/tokenizer.json", "tokenizer.json");
    if (!file.is_object()) throw ComponentError("tokenizer.json: not an object");
    load_pipeline(file);
    json config = json::object();
    std::string config_text;
    if (read_file(folder + "/tokenizer_config.json", &config_text)) {
      config = parse_json_file(folder + "/tokenizer_config.json", "tokenizer_config.json");
      if (!config.is_object()) throw ComponentError("tokenizer_config.json: not an object");
    }
    load_config(config, folder);
  }

  std::vector<int32_t> encode(const std::string& text, bool add_special_tokens) const override {
    std::vector<int32_t> ids;
    const std::string valid = to_valid_utf8(text);
    for (const tok::Segment& raw : raw_matcher_->split(valid)) {
      if (raw.id >= 0) {
        ids.push_back(raw.id);
        continue;
      }
      encode_text(raw.text, raw.offset == 0, &ids);
    }
    if (add_special_tokens && post_processor_) ids = post_processor_->process(std::move(ids));
    return ids;
  }

  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const override {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
      if (auto it = added_by_id_.find(id); it != added_by_id_.end()) {
        if (!(skip_special_tokens && it->second.special)) tokens.push_back(it->second.content);
      } else if (const std::string* token = model_->token_of(id)) {
        tokens.push_back(*token);
      }
    }
    if (!decoder_) return join(tokens, " ");
    return join(decoder_->decode_chain(std::move(tokens)), "");
  }

  std::string token_bytes(int32_t id) const override {
    if (auto it = added_by_id_.find(id); it != added_by_id_.end()) {
      // The decoders pass added tokens through, except SentencePiece's "▁" replacement.
      const auto& added = it->second;
      return added.special || !spm_spaces_ ? added.content : replace_all(added.content, kSpm, " ");
    }
    const std::string* token = model_->token_of(id);
    if (!token) return "";
    if (byte_level_) return unmap_byte_level(*token);
    // (std::stoi threw on a vocabulary's "<0xZZ>", which ended the process.)
    if (const int byte = model_->byte_fallback() ? unicode::byte_fallback_value(*token) : -1;
        byte >= 0) {
      return std::string(1, static_cast<char>(byte));
    }
    return spm_spaces_ ? replace_all(*token, kSpm, " ") : *token;
  }

  int32_t token_id(const std::string& content) const override {
    auto it = added_by_content_.find(content);
    return it != added_by_content_.end() ? it->second : model_->id_of(content);
  }
  bool is_special(int32_t id) const override {
    auto it = added_by_id_.find(id);
    return it != added_by_id_.end() && it->second.special;
  }
  int32_t size() const override { return size_; }
  const std::string& chat_template() const override { return chat_template_; }
  const std::string& bos_token() const override { return bos_token_; }
  const std::string& eos_token() const override { return eos_token_; }
  bool add_bos() const override { return add_bos_; }

 private:
  void load_pipeline(const json& file) {
    normalizer_ = tok::make_normalizer(file.value("normalizer", json()));
    pre_tokenizer_ = tok::make_pre_tokenizer(file.value("pre_tokenizer", json()));
    model_ = tok::make_bpe(file.value("model", json()));
    post_processor_ = tok::make_post_processor(file.value("post_processor", json()));
    const auto added = read_added_tokens(file.value("added_tokens", json()));
    auto contents = std::make_shared<std::unordered_set<std::string>>();
    for (const auto& a : added) contents->insert(a.content);
    decoder_ = tok::make_decoder(file.value("decoder", json()), contents);
    spm_spaces_ = file.value("decoder", json()).dump().find(kSpm) != std::string::npos;
    byte_level_ = has_component_type(file.value("decoder", json()), "ByteLevel") ||
                  has_component_type(file.value("pre_tokenizer", json()), "ByteLevel");
    build_matchers(added);
    size_ = model_->end_id();
    for (const auto& a : added) {
      added_by_id_.emplace(a.id, a);
      added_by_content_.emplace(a.content, a.id);
      size_ = std::max(size_, a.id + 1);
    }
  }

  // Tokens with normalized=false are searched in the raw text; the others in the normalized
  // text, by their normalized form (HF's split_trie / split_normalized_trie).
  void build_matchers(const std::vector<tok::AddedToken>& added) {
    std::vector<std::string> raw_patterns, norm_patterns;
    std::vector<tok::AddedToken> raw_tokens, norm_tokens;
    for (const auto& a : added) {
      if (a.normalized && normalizer_) {
        norm_patterns.push_back(normalizer_->normalize(a.content));
        norm_tokens.push_back(a);
      } else {
        raw_patterns.push_back(a.content);
        raw_tokens.push_back(a);
      }
    }
    raw_matcher_ = std::make_unique<tok::AddedTokenMatcher>(raw_patterns, raw_tokens);
    norm_matcher_ = std::make_unique<tok::AddedTokenMatcher>(norm_patterns, norm_tokens);
  }

  void load_config(const json& config, const std::string& folder) {
    chat_template_ = chat_template_of(config);
    std::string jinja;  // as in transformers, a chat_template.jinja file takes precedence
    if (read_file(folder + "/chat_template.jinja", &jinja)) chat_template_ = jinja;
    bos_token_ = token_text(config, "bos_token");
    eos_token_ = token_text(config, "eos_token");
    auto it = config.find("add_bos_token");
    if (it != config.end() && it->is_boolean()) {
      add_bos_ = it->get<bool>();
    } else {  // absent: whether the post-processor puts a token before the text
      constexpr int32_t kMarker = -2;
      const auto wrapped =
          post_processor_ ? post_processor_->process({kMarker}) : std::vector<int32_t>{};
      add_bos_ = !wrapped.empty() && wrapped.front() != kMarker;
    }
  }

  // Normalizes, then pre-tokenizes and runs the model on one stretch between raw added tokens.
  void encode_text(const std::string& text, bool at_start, std::vector<int32_t>* ids) const {
    const std::string normalized = normalizer_ ? normalizer_->normalize(text) : text;
    for (const tok::Segment& seg : norm_matcher_->split(normalized)) {
      if (seg.id >= 0) {
        ids->push_back(seg.id);
        continue;
      }
      const tok::Piece piece{seg.text, at_start && seg.offset == 0};
      if (!pre_tokenizer_) {
        append(model_->tokenize(piece.text), ids);
        continue;
      }
      for (const tok::Piece& word : pre_tokenizer_->split(piece))
        append(model_->tokenize(word.text), ids);
    }
  }

  static void append(const std::vector<int32_t>& from, std::vector<int32_t>* to) {
    to->insert(to->end(), from.begin(), from.end());
  }
  static std::string join(const std::vector<std::string>& parts, const std::string& sep) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
    return out;
  }
  static std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
      s.replace(p, from.size(), to);
    return s;
  }
  static std::string unmap_byte_level(const std::string& token) {
    std::string bytes;
    for (uint32_t cp : unicode::decode_utf8(token)) {
      const int b = unicode_to_byte(cp);
      if (b < 0) return token;  // not a byte-level token: its text as it is
      bytes.push_back(static_cast<char>(b));
    }
    return bytes;
  }

  std::unique_ptr<tok::Normalizer> normalizer_;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Bpe> model_;
  std::unique_ptr<tok::PostProcessor> post_processor_;
  std::unique_ptr<tok::Decoder> decoder_;
  std::unique_ptr<tok::AddedTokenMatcher> raw_matcher_, norm_matcher_;
  std::unordered_map<int32_t, tok::AddedToken> added_by_id_;
  std::unordered_map<std::string, int32_t> added_by_content_;
  bool byte_level_ = false;  // tokens are GPT-2 byte-level strings
  bool spm_spaces_ = false;  // the decoder turns SentencePiece's "▁" into spaces
  int32_t size_ = 0;
  std::string chat_template_, bos_token_, eos_token_;
  bool add_bos_ = false;
};

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& folder, std::string* error) {
  auto tokenizer = std::make_unique<HfTokenizer>();
  try {
    tokenizer->load(folder);
  } catch (const std::exception& e) {  // ComponentError, or a JSON value of the wrong type
    if (error) *error = std::string("tokenizer in ") + folder + ": " + e.what();
    return nullptr;
  }
  return tokenizer;
}

}  // namespace stcpp
