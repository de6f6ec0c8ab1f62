// Pre-tokenizers: split normalized text into the words the model tokenizes independently.
// Character-class splitters (Digits, Punctuation, Whitespace...) are expressed as regexes so
// that every split goes through one implementation of the HF split behaviors.
#include <map>

#include "safetensors/bpe.h"
#include "tokenizer_components.h"
#include "tokenizer_unicode.h"

namespace stcpp::tok {

namespace {

struct Span {
  size_t begin, end;
  bool is_match;
};

// The match/non-match spans covering `text`, as HF's Pattern::find_matches returns them.
std::vector<Span> spans_of(const std::string& text, const Regex& regex, bool invert) {
  std::vector<Span> spans;
  size_t prev = 0;
  for (auto [begin, end] : regex.find_all(text)) {
    if (prev != begin) spans.push_back({prev, begin, invert});
    spans.push_back({begin, end, !invert});
    prev = end;
  }
  if (prev != text.size()) spans.push_back({prev, text.size(), invert});
  return spans;
}

// HF's SplitDelimiterBehavior applied to the spans; the result's is_match is meaningless.
std::vector<Span> apply_behavior(const std::vector<Span>& spans, SplitBehavior behavior) {
  std::vector<Span> out;
  bool previous_match = false;
  switch (behavior) {
    case SplitBehavior::Isolated: return spans;
    case SplitBehavior::Removed:
      for (const Span& s : spans)
        if (!s.is_match) out.push_back(s);
      return out;
    case SplitBehavior::MergedWithPrevious:
      for (const Span& s : spans) {
        if (s.is_match && !previous_match && !out.empty())
          out.back().end = s.end;
        else
          out.push_back(s);
        previous_match = s.is_match;
      }
      return out;
    case SplitBehavior::MergedWithNext:
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !out.empty())
          out.back().begin = it->begin;
        else
          out.push_back(*it);
        previous_match = it->is_match;
      }
      return {out.rbegin(), out.rend()};
    case SplitBehavior::Contiguous:
      for (size_t i = 0; i < spans.size(); ++i) {
        if (i > 0 && spans[i].is_match == previous_match)
          out.back().end = spans[i].end;
        else
          out.push_back(spans[i]);
        previous_match = spans[i].is_match;
      }
      return out;
  }
  return out;
}

SplitBehavior behavior_of(const json& j, const char* component) {
  static const std::map<std::string, SplitBehavior> kNames = {
      {"Removed", SplitBehavior::Removed},
      {"Isolated", SplitBehavior::Isolated},
      {"MergedWithPrevious", SplitBehavior::MergedWithPrevious},
      {"MergedWithNext", SplitBehavior::MergedWithNext},
      {"Contiguous", SplitBehavior::Contiguous}};
  const std::string name = json_string(j, "behavior", "Isolated", component);
  auto it = kNames.find(name);
  if (it == kNames.end())
    throw ComponentError(std::string(component) + ": unknown split behavior '" + name + "'");
  return it->second;
}

class RegexSplit : public PreTokenizer {
 public:
  RegexSplit(const std::string& pattern, SplitBehavior behavior, bool invert, const char* component)
      : regex_(pattern, component), behavior_(behavior), invert_(invert) {}
  std::vector<Piece> split(const Piece& piece) const override {
    return split_by_regex(piece, regex_, behavior_, invert_);
  }

 private:
  Regex regex_;
  SplitBehavior behavior_;
  bool invert_;
};

// GPT-2's word regex, used by ByteLevel when use_regex is set.
const char* kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

class ByteLevelPre : public PreTokenizer {
 public:
  explicit ByteLevelPre(const json& j)
      : add_prefix_space_(json_bool(j, "add_prefix_space", true, "ByteLevel pre-tokenizer")) {
    if (json_bool(j, "use_regex", true, "ByteLevel pre-tokenizer"))
      regex_ = std::make_unique<Regex>(kGpt2Pattern, "ByteLevel pre-tokenizer");
  }
  std::vector<Piece> split(const Piece& piece) const override {
    Piece prefixed = piece;
    if (add_prefix_space_ && prefixed.text.rfind(' ', 0) != 0) prefixed.text.insert(0, " ");
    std::vector<Piece> words =
        regex_ ? split_by_regex(prefixed, *regex_, SplitBehavior::Isolated, false)
               : std::vector<Piece>{prefixed};
    for (Piece& word : words) {  // bytes -> printable code points
      std::string mapped;
      for (unsigned char c : word.text) mapped += byte_to_unicode(c);
      word.text = std::move(mapped);
    }
    return words;
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

class Metaspace : public PreTokenizer {
 public:
  explicit Metaspace(const json& j) {
    const char* c = "Metaspace pre-tokenizer";
    replacement_ = json_string(j, "replacement", "\xE2\x96\x81", c);
    // Older files carry add_prefix_space instead of prepend_scheme.
    const bool legacy_prefix = json_bool(j, "add_prefix_space", true, c);
    scheme_ = json_string(j, "prepend_scheme", legacy_prefix ? "always" : "never", c);
    if (scheme_ != "always" && scheme_ != "first" && scheme_ != "never")
      throw ComponentError(std::string(c) + ": unknown prepend_scheme '" + scheme_ + "'");
    if (json_bool(j, "split", true, c))
      regex_ = std::make_unique<Regex>(regex_escape(replacement_), c);
  }
  std::vector<Piece> split(const Piece& piece) const override {
    Piece out = piece;
    std::string replaced;
    for (char ch : piece.text) {
      if (ch == ' ')
        replaced += replacement_;
      else
        replaced += ch;
    }
    out.text = std::move(replaced);
    const bool prepend = scheme_ == "always" || (scheme_ == "first" && piece.at_start);
    if (prepend && out.text.rfind(replacement_, 0) != 0) out.text.insert(0, replacement_);
    if (!regex_) return {out};
    return split_by_regex(out, *regex_, SplitBehavior::MergedWithNext, false);
  }

 private:
  std::string replacement_, scheme_;
  std::unique_ptr<Regex> regex_;
};

class SequencePre : public PreTokenizer {
 public:
  explicit SequencePre(const json& j) {
    auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array())
      throw ComponentError("Sequence pre-tokenizer: 'pretokenizers' is not an array");
    for (const json& child : *it) {
      auto made = make_pre_tokenizer(child);
      if (made) steps_.push_back(std::move(made));
    }
  }
  std::vector<Piece> split(const Piece& piece) const override {
    std::vector<Piece> pieces{piece};
    for (const auto& step : steps_) {
      std::vector<Piece> next;
      for (const Piece& p : pieces)
        for (Piece& q : step->split(p)) next.push_back(std::move(q));
      pieces = std::move(next);
    }
    return pieces;
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

// ASCII punctuation (Rust's is_ascii_punctuation) plus Unicode category P.
const char* kPunctuation = "[\\p{P}!-/:-@\\[-`{-~]";

std::unique_ptr<PreTokenizer> make_split(const json& j) {
  const char* c = "Split pre-tokenizer";
  return std::make_unique<RegexSplit>(pattern_of(j.value("pattern", json()), c), behavior_of(j, c),
                                      json_bool(j, "invert", false, c), c);
}

std::unique_ptr<PreTokenizer> make_digits(const json& j) {
  const bool individual = json_bool(j, "individual_digits", false, "Digits pre-tokenizer");
  return std::make_unique<RegexSplit>(
      "\\p{N}", individual ? SplitBehavior::Isolated : SplitBehavior::Contiguous, false,
      "Digits pre-tokenizer");
}

std::unique_ptr<PreTokenizer> make_bert() {
  json seq = {
      {"type", "Sequence"},
      {"pretokenizers", json::array({{{"type", "WhitespaceSplit"}}, {{"type", "Punctuation"}}})}};
  return std::make_unique<SequencePre>(seq);
}

}  // namespace

std::vector<Piece> split_by_regex(const Piece& piece, const Regex& regex, SplitBehavior behavior,
                                  bool invert) {
  std::vector<Piece> out;
  for (const Span& s : apply_behavior(spans_of(piece.text, regex, invert), behavior)) {
    if (s.end <= s.begin) continue;  // HF drops empty splits
    out.push_back({piece.text.substr(s.begin, s.end - s.begin), piece.at_start && s.begin == 0});
  }
  return out;
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j) {
  if (j.is_null()) return nullptr;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    throw ComponentError("pre-tokenizer: not an object with a 'type'");
  const std::string type = j["type"].get<std::string>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelPre>(j);
  if (type == "Split") return make_split(j);
  if (type == "Sequence") return std::make_unique<SequencePre>(j);
  if (type == "Metaspace") return std::make_unique<Metaspace>(j);
  if (type == "Digits") return make_digits(j);
  if (type == "Punctuation")
    return std::make_unique<RegexSplit>(kPunctuation, behavior_of(j, "Punctuation pre-tokenizer"),
                                        false, "Punctuation pre-tokenizer");
  if (type == "Whitespace")  // keeps \w+ and [^\w\s]+ runs, drops the rest
    return std::make_unique<RegexSplit>("\\w+|[^\\w\\s]+", SplitBehavior::Removed, true,
                                        "Whitespace pre-tokenizer");
  if (type == "WhitespaceSplit")
    return std::make_unique<RegexSplit>("\\s+", SplitBehavior::Removed, false,
                                        "WhitespaceSplit pre-tokenizer");
  if (type == "CharDelimiterSplit")
    return std::make_unique<RegexSplit>(
        regex_escape(json_string(j, "delimiter", " ", "CharDelimiterSplit pre-tokenizer")),
        SplitBehavior::Removed, false, "CharDelimiterSplit pre-tokenizer");
  if (type == "BertPreTokenizer") return make_bert();
  throw ComponentError("pre-tokenizer: unsupported type '" + type + "'");
}

}  // namespace stcpp::tok
