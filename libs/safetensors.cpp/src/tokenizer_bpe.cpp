#include "tokenizer_bpe.h"

#include <algorithm>
#include <cstdio>
#include <queue>

#include "tokenizer_unicode.h"

namespace stcpp::tok {

namespace {

constexpr const char* kModel = "BPE model";
constexpr size_t kCacheLimit = 200000;  // words; the cache is dropped when it grows past this

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

Bpe::Bpe(const json& model) {
  if (!model.is_object()) throw ComponentError("model: not an object");
  const std::string type = json_string(model, "type", "BPE", "model");
  if (type != "BPE") throw ComponentError("model: unsupported type '" + type + "' (only BPE)");
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      model["dropout"].get<double>() > 0.0)
    throw ComponentError("BPE model: dropout is not supported");
  fuse_unk_ = json_bool(model, "fuse_unk", false, kModel);
  byte_fallback_ = json_bool(model, "byte_fallback", false, kModel);
  ignore_merges_ = json_bool(model, "ignore_merges", false, kModel);
  prefix_ = json_string(model, "continuing_subword_prefix", "", kModel);
  suffix_ = json_string(model, "end_of_word_suffix", "", kModel);
  read_vocab(model.value("vocab", json()));
  read_merges(model.value("merges", json::array()));
  const std::string unk = json_string(model, "unk_token", "", kModel);
  if (!unk.empty()) unk_id_ = id_of(unk);
}

void Bpe::read_vocab(const json& vocab) {
  if (!vocab.is_object()) throw ComponentError("BPE model: 'vocab' is not an object");
  vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() > 100000000)
      throw ComponentError("BPE model: vocab entry '" + it.key() + "' has no valid id");
    const auto id = it.value().get<int32_t>();
    vocab_[it.key()] = id;
    if (static_cast<size_t>(id) >= id_to_token_.size()) {
      id_to_token_.resize(id + 1);
      has_id_.resize(id + 1, false);
    }
    id_to_token_[id] = it.key();
    has_id_[id] = true;
  }
}

// Merges come as "left right" strings (older files) or ["left", "right"] arrays.
void Bpe::read_merges(const json& merges) {
  if (!merges.is_array()) throw ComponentError("BPE model: 'merges' is not an array");
  merges_.reserve(merges.size());
  int32_t rank = 0;
  for (const json& m : merges) {
    std::string left, right;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        throw ComponentError("BPE model: merge '" + s + "' is not two tokens");
      left = s.substr(0, space);
      right = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      throw ComponentError("BPE model: a merge is neither \"a b\" nor [\"a\", \"b\"]");
    }
    const bool strip = !prefix_.empty() && right.compare(0, prefix_.size(), prefix_) == 0;
    const std::string merged = left + (strip ? right.substr(prefix_.size()) : right);
    const int32_t a = id_of(left), b = id_of(right), c = id_of(merged);
    // HF refuses such files; a merge that can never fire is harmless, so it is skipped.
    if (a >= 0 && b >= 0 && c >= 0) merges_.emplace(pair_key(a, b), Merge{rank, c});
    ++rank;
  }
}

int32_t Bpe::id_of(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* Bpe::token_of(int32_t id) const {
  if (id < 0 || id >= end_id() || !has_id_[id]) return nullptr;
  return &id_to_token_[id];
}

const Bpe::Merge* Bpe::find_merge(int32_t left, int32_t right) const {
  auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

std::vector<int32_t> Bpe::initial_symbols(const std::string& word) const {
  std::vector<int32_t> symbols;
  bool last_was_unk = false;
  for (size_t i = 0; i < word.size();) {
    const size_t n =
        std::min(unicode::utf8_len(static_cast<unsigned char>(word[i])), word.size() - i);
    std::string piece = word.substr(i, n);
    if (i > 0 && !prefix_.empty()) piece = prefix_ + piece;
    i += n;
    if (i == word.size()) piece += suffix_;
    if (int32_t id = id_of(piece); id >= 0) {
      symbols.push_back(id);
      last_was_unk = false;
      continue;
    }
    if (byte_fallback_) {
      std::vector<int32_t> bytes;
      for (unsigned char c : word.substr(i - n, n)) {
        char name[8];
        snprintf(name, sizeof(name), "<0x%02X>", c);
        bytes.push_back(id_of(name));
      }
      if (std::find(bytes.begin(), bytes.end(), -1) == bytes.end()) {
        symbols.insert(symbols.end(), bytes.begin(), bytes.end());
        last_was_unk = false;
        continue;
      }
    }
    if (unk_id_ < 0) continue;  // no way to represent the character: dropped
    if (!(fuse_unk_ && last_was_unk)) symbols.push_back(unk_id_);
    last_was_unk = true;
  }
  return symbols;
}

// The lowest-ranked adjacent pair merges first (leftmost on ties), as in HF's Word::merge_all.
std::vector<int32_t> Bpe::apply_merges(std::vector<int32_t> symbols) const {
  const int n = static_cast<int>(symbols.size());
  std::vector<int> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int pos;
    int32_t merged;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  auto push = [&](int pos) {
    if (pos < 0 || next[pos] < 0) return;
    if (const Merge* m = find_merge(symbols[pos], symbols[next[pos]]))
      queue.push({m->rank, pos, m->merged});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    if (!alive[top.pos] || next[top.pos] < 0) continue;
    const Merge* m = find_merge(symbols[top.pos], symbols[next[top.pos]]);
    if (!m || m->merged != top.merged) continue;  // stale: a neighbour changed since
    const int right = next[top.pos];
    symbols[top.pos] = top.merged;
    alive[right] = false;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[next[right]] = top.pos;
    push(prev[top.pos]);
    push(top.pos);
  }
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i)
    if (alive[i]) out.push_back(symbols[i]);
  return out;
}

std::vector<int32_t> Bpe::tokenize(const std::string& word) const {
  if (word.empty()) return {};
  if (ignore_merges_) {
    if (int32_t id = id_of(word); id >= 0) return {id};
  }
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(word);
    if (it != cache_.end()) return it->second;
  }
  std::vector<int32_t> ids = apply_merges(initial_symbols(word));
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kCacheLimit) cache_.clear();
  cache_.emplace(word, ids);
  return ids;
}

}  // namespace stcpp::tok
