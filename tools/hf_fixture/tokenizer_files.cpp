#include "hf_fixture/tokenizer_files.h"

namespace allm::fixture {

namespace {

constexpr int32_t kControlType = 3;

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

}  // namespace allm::fixture
