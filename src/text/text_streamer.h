// Turns generated token bytes into text that is safe to send: never half a UTF-8 character,
// never any part of a stop sequence (also when one straddles several tokens).
#pragma once

#include <string>
#include <vector>

namespace allm {

class TextStreamer {
 public:
  explicit TextStreamer(std::vector<std::string> stops);

  // Adds one token's bytes; returns the text that can be released now.
  std::string push(const std::string& bytes);
  // Releases whatever is still held back (the end of generation).
  std::string finish();
  // True once a stop sequence matched; nothing after it is ever released.
  bool stopped() const { return stopped_; }
  // The stop sequence that matched (empty until one did).
  const std::string& matched_stop() const { return matched_stop_; }

 private:
  size_t held_for_stop_prefix() const;

  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
  std::string matched_stop_;
};

}  // namespace allm
