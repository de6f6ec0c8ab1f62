// Added tokens (tokenizer.json "added_tokens"): found in the text before any other stage,
// leftmost-longest, with the single_word / lstrip / rstrip rules of HF's AddedVocabulary.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace stcpp::tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false, single_word = false, lstrip = false, rstrip = false, normalized = false;
};

// A slice of the input: an added token (id >= 0) or text to tokenize (id < 0).
struct Segment {
  std::string text;
  int32_t id = -1;
  size_t offset = 0;  // byte offset in the string that was split
};

class AddedTokenMatcher {
 public:
  // `patterns[i]` is what to look for (the token's content, normalized when matching on
  // normalized text); `tokens[i]` gives its id and rules.
  AddedTokenMatcher(std::vector<std::string> patterns, std::vector<AddedToken> tokens);
  bool empty() const { return tokens_.empty(); }
  std::vector<Segment> split(const std::string& text) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int>> children;
    int token = -1;  // index into tokens_ when a pattern ends here
  };
  void insert(const std::string& pattern, int token);
  // Index of the longest pattern starting at `pos` and its end, or -1.
  int longest_at(const std::string& text, size_t pos, size_t* end) const;

  std::vector<Node> nodes_;
  std::vector<AddedToken> tokens_;
};

}  // namespace stcpp::tok
