// Byte-level BPE, for any engine whose tokenizer is a vocabulary and ranked merges (tokenizer.json
// models here, CLIP's vocab.json + merges.txt in diffusion.cpp): GPT-2's map of bytes onto
// printable characters, and the BPE model that merges one word at a time.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace stcpp {

// GPT-2's reversible map of the 256 byte values onto printable code points.
const std::string& byte_to_unicode(uint8_t byte);
int unicode_to_byte(uint32_t cp);  // -1 when `cp` is not in the map

// The options of a tokenizer.json BPE model, named as there.
struct BpeOptions {
  std::string unk_token;  // "": characters the vocabulary lacks are dropped
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
  std::string continuing_subword_prefix;
  std::string end_of_word_suffix;
};

class Bpe {
 public:
  static constexpr int64_t kMaxId = 100000000;

  // `vocab`: tokens and their ids; an id outside [0, kMaxId] throws std::invalid_argument naming
  // the token. `merges`: token pairs in rank order; a merge whose parts or result the vocabulary
  // lacks can never fire and is skipped.
  Bpe(const std::vector<std::pair<std::string, int64_t>>& vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options = {});

  // The ids of one word: its characters (the last with end_of_word_suffix), merged lowest rank
  // first as Hugging Face tokenizers does; cached per word.
  std::vector<int32_t> tokenize(const std::string& word) const;
  int32_t id_of(const std::string& token) const;  // -1 when absent
  const std::string* token_of(int32_t id) const;  // null when absent
  int32_t end_id() const { return static_cast<int32_t>(id_to_token_.size()); }
  bool byte_fallback() const { return options_.byte_fallback; }

 private:
  struct Merge {
    int32_t rank, merged;
  };
  // The word as initial symbols: one per character, or its <0xNN> bytes, or unk.
  std::vector<int32_t> initial_symbols(const std::string& word) const;
  std::vector<int32_t> apply_merges(std::vector<int32_t> symbols) const;
  const Merge* find_merge(int32_t left, int32_t right) const;

  BpeOptions options_;
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t unk_id_ = -1;

  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace stcpp
