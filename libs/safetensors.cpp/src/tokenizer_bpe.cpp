#include "tokenizer_bpe.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <queue>
#include <stdexcept>

#include "tokenizer_unicode.h"

namespace stcpp::tok {

namespace {

constexpr const char* kModel = "BPE model";

// Merges come as "left right" strings (older files) or ["left", "right"] arrays.
std::vector<std::pair<std::string, std::string>> read_merges(const json& merges) {
  if (!merges.is_array()) throw ComponentError("BPE model: 'merges' is not an array");
  std::vector<std::pair<std::string, std::string>> pairs;
  pairs.reserve(merges.size());
  for (const json& m : merges) {
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        throw ComponentError("BPE model: merge '" + s + "' is not two tokens");
      pairs.emplace_back(s.substr(0, space), s.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      pairs.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      throw ComponentError("BPE model: a merge is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }
  return pairs;
}

}  // namespace

std::unique_ptr<Bpe> make_bpe(const json& model) {
  if (!model.is_object()) throw ComponentError("model: not an object");
  const std::string type = json_string(model, "type", "BPE", "model");
  if (type != "BPE") throw ComponentError("model: unsupported type '" + type + "' (only BPE)");
  if (model.contains("dropout") && !model["dropout"].is_null() &&
      model["dropout"].get<double>() > 0.0)
    throw ComponentError("BPE model: dropout is not supported");
  BpeOptions options;
  options.fuse_unk = json_bool(model, "fuse_unk", false, kModel);
  options.byte_fallback = json_bool(model, "byte_fallback", false, kModel);
  options.ignore_merges = json_bool(model, "ignore_merges", false, kModel);
  options.continuing_subword_prefix = json_string(model, "continuing_subword_prefix", "", kModel);
  options.end_of_word_suffix = json_string(model, "end_of_word_suffix", "", kModel);
  options.unk_token = json_string(model, "unk_token", "", kModel);
  const json vocab = model.value("vocab", json());
  if (!vocab.is_object()) throw ComponentError("BPE model: 'vocab' is not an object");
  std::vector<std::pair<std::string, int64_t>> entries;
  entries.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it)  // not an integer: an invalid id
    entries.emplace_back(it.key(), it.value().is_number_integer() ? it.value().get<int64_t>() : -1);
  return std::make_unique<Bpe>(entries, read_merges(model.value("merges", json::array())),
                               std::move(options));
}

}  // namespace stcpp::tok

namespace stcpp {

namespace {

// bytes_to_unicode() of GPT-2: printable Latin-1 bytes map to themselves, the others to
// U+0100 upwards in byte order.
struct ByteMap {
  std::array<std::string, 256> to_char;
  std::array<int, 512> to_byte;
  ByteMap() {
    to_byte.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const uint32_t cp = printable ? static_cast<uint32_t>(b) : next++;
      unicode::append_utf8(&to_char[b], cp);
      to_byte[cp] = b;
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

constexpr size_t kCacheLimit = 200000;  // words; the cache is dropped when it grows past this

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

}  // namespace

const std::string& byte_to_unicode(uint8_t byte) {
  return byte_map().to_char[byte];
}

int unicode_to_byte(uint32_t cp) {
  return cp < 512 ? byte_map().to_byte[cp] : -1;
}

Bpe::Bpe(const std::vector<std::pair<std::string, int64_t>>& vocab,
         const std::vector<std::pair<std::string, std::string>>& merges, BpeOptions options)
    : options_(std::move(options)) {
  vocab_.reserve(vocab.size());
  for (const auto& [token, id] : vocab) {
    if (id < 0 || id > kMaxId)
      throw std::invalid_argument("BPE model: vocab entry '" + token + "' has no valid id");
    vocab_[token] = static_cast<int32_t>(id);
    if (static_cast<size_t>(id) >= id_to_token_.size()) {
      id_to_token_.resize(id + 1);
      has_id_.resize(id + 1, false);
    }
    id_to_token_[id] = token;
    has_id_[id] = true;
  }
  merges_.reserve(merges.size());
  const std::string& prefix = options_.continuing_subword_prefix;
  int32_t rank = 0;
  for (const auto& [left, right] : merges) {
    const bool strip = !prefix.empty() && right.compare(0, prefix.size(), prefix) == 0;
    const std::string merged = left + (strip ? right.substr(prefix.size()) : right);
    const int32_t a = id_of(left), b = id_of(right), c = id_of(merged);
    // HF refuses such files; a merge that can never fire is harmless, so it is skipped.
    if (a >= 0 && b >= 0 && c >= 0) merges_.emplace(pair_key(a, b), Merge{rank, c});
    ++rank;
  }
  if (!options_.unk_token.empty()) unk_id_ = id_of(options_.unk_token);
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
    if (i > 0) piece = options_.continuing_subword_prefix + piece;
    i += n;
    if (i == word.size()) piece += options_.end_of_word_suffix;
    if (int32_t id = id_of(piece); id >= 0) {
      symbols.push_back(id);
      last_was_unk = false;
      continue;
    }
    if (options_.byte_fallback) {
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
    if (!(options_.fuse_unk && last_was_unk)) symbols.push_back(unk_id_);
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
  if (options_.ignore_merges) {
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

}  // namespace stcpp
