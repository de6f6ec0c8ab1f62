// Chat formatting and output parsing through llama.cpp's common chat layer (Jinja templates,
// reasoning and tool-call parsers), shared by every backend.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/error.h"

namespace allm {

struct ChatMessage {
  std::string role;  // system, developer, user, assistant
  std::string content;
  std::string reasoning;
};

struct ChatDelta {
  std::string content;
  std::string reasoning;
  bool empty() const { return content.empty() && reasoning.empty(); }
};

// Incremental parse of a model's answer: raw generated text in, content/reasoning deltas out.
class ChatOutputParser {
 public:
  virtual ~ChatOutputParser() = default;
  virtual ChatDelta push(const std::string& text) = 0;
  virtual ChatDelta finish() = 0;
  virtual ChatMessage message() const = 0;
};

struct FormattedChat {
  std::string prompt;
  std::vector<std::string> extra_stops;  // stop strings the template asks for
  std::unique_ptr<ChatOutputParser> parser;
};

class ChatFormatter {
 public:
  // An empty template falls back to ChatML.
  static std::unique_ptr<ChatFormatter> create(const std::string& jinja_template,
                                               const std::string& bos_text,
                                               const std::string& eos_text, Error* error);
  virtual ~ChatFormatter() = default;
  virtual Error format(const std::vector<ChatMessage>& messages, FormattedChat* out) const = 0;
};

}  // namespace allm
