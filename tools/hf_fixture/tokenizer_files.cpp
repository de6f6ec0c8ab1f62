#include "hf_fixture/tokenizer_files.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace allm::fixture {

namespace {

constexpr int32_t kControlType = 3;
constexpr int32_t kTypeUnused = 5;

// GPT-2's byte-level step; use_regex splits words with the GPT-2 pattern first (what llama.cpp
// calls the "gpt-2" pre-tokenizer).
nlohmann::ordered_json byte_level(bool add_prefix_space, bool trim_offsets) {
  return {{"type", "ByteLevel"},
          {"add_prefix_space", add_prefix_space},
          {"trim_offsets", trim_offsets},
          {"use_regex", true}};
}

nlohmann::ordered_json added_token(int32_t id, const std::string& content) {
  return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", true}};
}

// Regular tokens only: like real Llama 3 / Qwen files, the specials live in added_tokens alone.
nlohmann::ordered_json bpe_model(const ByteLevelVocabulary& vocab) {
  nlohmann::ordered_json ids = nlohmann::ordered_json::object();
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    if (vocab.types[id] != kControlType) ids[vocab.tokens[id]] = id;
  }
  return {{"type", "BPE"},
          {"dropout", nullptr},
          {"unk_token", nullptr},
          {"continuing_subword_prefix", nullptr},
          {"end_of_word_suffix", nullptr},
          {"fuse_unk", false},
          {"byte_fallback", false},
          {"ignore_merges", false},
          {"vocab", ids},
          {"merges", vocab.merges}};
}

}  // namespace

nlohmann::ordered_json tokenizer_json(const ByteLevelVocabulary& vocab) {
  nlohmann::ordered_json added = nlohmann::ordered_json::array();
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    if (vocab.types[id] == kControlType) added.push_back(added_token(id, vocab.tokens[id]));
  }
  nlohmann::ordered_json t;
  t["version"] = "1.0";
  t["truncation"] = nullptr;
  t["padding"] = nullptr;
  t["added_tokens"] = added;
  t["normalizer"] = nullptr;
  t["pre_tokenizer"] = byte_level(false, true);
  t["post_processor"] = byte_level(false, false);
  t["decoder"] = byte_level(true, true);
  t["model"] = bpe_model(vocab);
  return t;
}

nlohmann::ordered_json tokenizer_config_json(const ByteLevelVocabulary& vocab,
                                             int model_max_length) {
  nlohmann::ordered_json decoder = nlohmann::ordered_json::object();
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    if (vocab.types[id] != kControlType) continue;
    nlohmann::ordered_json entry = added_token(static_cast<int32_t>(id), vocab.tokens[id]);
    entry.erase("id");
    decoder[std::to_string(id)] = entry;
  }
  nlohmann::ordered_json c;
  c["add_bos_token"] = false;
  c["add_eos_token"] = false;
  c["add_prefix_space"] = false;
  c["added_tokens_decoder"] = decoder;
  c["bos_token"] = vocab.tokens[vocab.bos];
  c["eos_token"] = vocab.tokens[vocab.eos];
  c["pad_token"] = nullptr;
  c["chat_template"] = tiny_chatml_template();
  c["clean_up_tokenization_spaces"] = false;
  c["model_max_length"] = model_max_length;
  c["tokenizer_class"] = "PreTrainedTokenizerFast";
  return c;
}

namespace {

bool read_file(const std::filesystem::path& path, std::string* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  if (!in) {
    *error = "cannot read " + path.string();
    return false;
  }
  *out = bytes.str();
  return true;
}

// bos_token / eos_token as tokenizer_config.json gives them: text, or an AddedToken object.
std::string special_text(const nlohmann::ordered_json& config, const char* key) {
  const auto it = config.find(key);
  if (it == config.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return "";
}

}  // namespace

bool read_tokenizer_files(const std::string& dir, TokenizerFiles* out, std::string* error) {
  const std::filesystem::path root(dir);
  std::string config_text;
  if (!read_file(root / "tokenizer.json", &out->tokenizer_json, error) ||
      !read_file(root / "tokenizer_config.json", &config_text, error)) {
    return false;
  }
  // Unordered: ordered_json would take minutes over a 200k-token vocabulary.
  const nlohmann::json tokenizer = nlohmann::json::parse(out->tokenizer_json, nullptr, false);
  out->config = nlohmann::ordered_json::parse(config_text, nullptr, false);
  const nlohmann::json empty;
  const auto& model =
      tokenizer.is_object() && tokenizer.contains("model") ? tokenizer["model"] : empty;
  const auto& added = tokenizer.is_object() && tokenizer.contains("added_tokens")
                          ? tokenizer["added_tokens"]
                          : empty;
  if (!out->config.is_object() || !model.is_object() || !model.contains("vocab") ||
      !model["vocab"].is_object() || !added.is_array()) {
    *error = dir +
             ": expected tokenizer.json with model.vocab and added_tokens, and a "
             "tokenizer_config.json object";
    return false;
  }
  ByteLevelVocabulary& v = out->vocab;
  auto put = [&v](int64_t id, const std::string& text, int32_t type) {
    if (id < 0) return;
    if (id >= static_cast<int64_t>(v.tokens.size())) {
      v.tokens.resize(id + 1);
      v.types.resize(id + 1, kTypeUnused);
    }
    v.tokens[id] = text, v.types[id] = type;
  };
  for (const auto& [text, id] : model["vocab"].items()) put(id.get<int64_t>(), text, 1);
  for (const auto& token : added) {
    put(token.value("id", int64_t{-1}), token.value("content", std::string()),
        token.value("special", false) ? kControlType : 1);
  }
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    if (v.types[id] == kTypeUnused) v.tokens[id] = "[PAD" + std::to_string(id) + "]";
  }
  auto id_of = [&v](const std::string& text) {
    for (size_t id = 0; id < v.tokens.size(); ++id) {
      if (!text.empty() && v.tokens[id] == text) return static_cast<int32_t>(id);
    }
    return int32_t{-1};
  };
  v.bos = id_of(special_text(out->config, "bos_token"));
  v.eos = id_of(special_text(out->config, "eos_token"));
  if (v.tokens.empty() || v.eos < 0) {
    *error = dir + ": the tokenizer has no tokens or its eos_token is not one of them";
    return false;
  }
  return true;
}

}  // namespace allm::fixture
