// Chat formatting and output parsing through llama.cpp's common chat layer (Jinja templates,
// reasoning and tool-call parsers), shared by every backend. Templates that do not describe
// tools get a generic format instead: the tools in the system message and calls answered as one
// JSON object, constrained by a grammar like any other.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "text/generation.h"

namespace allm {

// A function call the model made (or made earlier in the conversation).
struct ToolCall {
  std::string id;  // pairs the call with its output
  std::string name;
  std::string arguments;  // the text of a JSON object
};

struct ChatMessage {
  std::string role;  // system, developer, user, assistant, tool
  std::string content;
  std::string reasoning;
  std::vector<ToolCall> tool_calls;  // assistant: the functions it called
  std::string tool_call_id;          // tool: the call this message is the output of
  std::string tool_name;             // tool: that call's function
};

// A new call id (call_ and random hex digits), for calls whose answer format names none.
std::string new_tool_call_id();

struct FunctionTool {
  std::string name;
  std::string description;
  std::string parameters;  // the JSON Schema of the arguments, as text
};

enum class ToolChoice { AUTO, NONE, REQUIRED };

// What a request asks of the chat format besides its messages.
struct ChatOptions {
  std::vector<FunctionTool> tools;  // with REQUIRED and one tool: that tool is called
  ToolChoice tool_choice = ToolChoice::AUTO;
  bool parallel_tool_calls = true;
  std::string reasoning_effort;  // for templates that take one (gpt-oss); empty: their default
  // False: templates that can answer without reasoning (enable_thinking, as Qwen3's) do.
  bool enable_thinking = true;
  // With tool_choice auto, a JSON response format's schema (as text): the answer is then calls or
  // that JSON, in the generic format whatever the template (one grammar holds both).
  std::string answer_schema;
  bool calls_tools() const { return !tools.empty() && tool_choice != ToolChoice::NONE; }
  // Whether each answer is a call or JSON of answer_schema (the generic format's grammar holds
  // both).
  bool calls_or_answers_json() const {
    return calls_tools() && tool_choice == ToolChoice::AUTO && !answer_schema.empty();
  }
};

// A piece of the `index`th call of the answer: its id and name come with its first piece, the
// argument text in pieces that concatenate to the whole.
struct ToolCallDelta {
  size_t index = 0;
  std::string id;
  std::string name;
  std::string arguments;
};

struct ChatDelta {
  std::string content;
  std::string reasoning;
  std::vector<ToolCallDelta> tool_calls;
  bool empty() const { return content.empty() && reasoning.empty() && tool_calls.empty(); }
};

// Incremental parse of a model's answer: raw generated text in, content/reasoning/call deltas
// out. Calls get ids (call_...) as they appear.
class ChatOutputParser {
 public:
  virtual ~ChatOutputParser() = default;
  virtual ChatDelta push(const std::string& text) = 0;
  virtual ChatDelta finish() = 0;
  virtual ChatMessage message() const = 0;
};

// A parser that takes the generated text as it is, as content (prompts without a chat template).
std::unique_ptr<ChatOutputParser> plain_text_parser();

struct FormattedChat {
  std::string prompt;
  std::vector<std::string> extra_stops;  // stop strings the template asks for
  // The tool-call grammar when the request calls tools (lazy for tool_choice auto); empty else.
  GrammarConstraint grammar;
  std::unique_ptr<ChatOutputParser> parser;
};

class ChatFormatter {
 public:
  // An empty template falls back to ChatML.
  static std::unique_ptr<ChatFormatter> create(const std::string& jinja_template,
                                               const std::string& bos_text,
                                               const std::string& eos_text, Error* error);
  virtual ~ChatFormatter() = default;
  virtual Error format(const std::vector<ChatMessage>& messages, const ChatOptions& options,
                       FormattedChat* out) const = 0;
  Error format(const std::vector<ChatMessage>& messages, FormattedChat* out) const {
    return format(messages, ChatOptions{}, out);
  }
};

}  // namespace allm
