// The BPE model of tokenizer.json: vocabulary, ranked merges, unknown-token and byte-fallback
// handling. Tokenizes one pre-tokenized word at a time, caching the result per word.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer_components.h"

namespace stcpp::tok {

class Bpe {
 public:
  explicit Bpe(const json& model);  // throws ComponentError

  std::vector<int32_t> tokenize(const std::string& word) const;
  int32_t id_of(const std::string& token) const;  // -1 when absent
  const std::string* token_of(int32_t id) const;  // null when absent
  int32_t end_id() const { return static_cast<int32_t>(id_to_token_.size()); }
  bool byte_fallback() const { return byte_fallback_; }

 private:
  struct Merge {
    int32_t rank, merged;
  };
  void read_vocab(const json& vocab);
  void read_merges(const json& merges);
  // The word as initial symbols: one per character, or its <0xNN> bytes, or unk.
  std::vector<int32_t> initial_symbols(const std::string& word) const;
  std::vector<int32_t> apply_merges(std::vector<int32_t> symbols) const;
  const Merge* find_merge(int32_t left, int32_t right) const;

  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  std::unordered_map<uint64_t, Merge> merges_;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  std::string prefix_, suffix_;  // continuing_subword_prefix, end_of_word_suffix

  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace stcpp::tok
