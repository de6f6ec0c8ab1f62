#include "text/chat_format.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "base/random_id.h"
#include "chat.h"
#include "nlohmann/json.hpp"
#include "text/generic_tool_format.h"

namespace allm {

std::string new_tool_call_id() {
  return random_id("call_");
}

namespace {

// The text after `before` when it continues it; empty when it does not (a parse may shorten what
// it showed before, e.g. a stop string that turned out whole).
std::string continuation(const std::string& before, const std::string& now) {
  if (now.size() <= before.size() || now.compare(0, before.size(), before) != 0) return "";
  return now.substr(before.size());
}

class CommonChatOutputParser : public ChatOutputParser {
 public:
  explicit CommonChatOutputParser(common_chat_parser_params params) : params_(std::move(params)) {}

  ChatDelta push(const std::string& text) override {
    raw_ += text;
    return reparse(/*partial=*/true);
  }
  ChatDelta finish() override { return reparse(/*partial=*/false); }
  ChatMessage message() const override {
    ChatMessage message{"assistant", parsed_.content, parsed_.reasoning_content, {}, "", ""};
    for (const common_chat_tool_call& call : parsed_.tool_calls) {
      message.tool_calls.push_back({call.id, call.name, call.arguments});
    }
    return message;
  }

 private:
  // Re-parses everything generated so far; the parser needs the whole text to place markers.
  ChatDelta reparse(bool partial) {
    common_chat_msg next;
    try {
      next = common_chat_parse(raw_, partial, params_);
    } catch (const std::exception&) {
      if (partial) return {};  // the text may become parsable with more tokens
      next = common_chat_msg();
      next.role = "assistant";
      next.content = raw_;  // unparsable at the end: the raw text is the answer
    }
    if (next.empty() && partial) return {};
    next.set_tool_call_ids(call_ids_, new_tool_call_id);
    ChatDelta delta;
    delta.content = continuation(parsed_.content, next.content);
    delta.reasoning = continuation(parsed_.reasoning_content, next.reasoning_content);
    call_deltas(next, partial, &delta);
    parsed_ = std::move(next);
    return delta;
  }

  // A call is shown once its name is whole: when its arguments have begun, or at the end. Then
  // its arguments as they grow.
  void call_deltas(const common_chat_msg& next, bool partial, ChatDelta* delta) {
    for (size_t i = 0; i < next.tool_calls.size(); ++i) {
      const common_chat_tool_call& call = next.tool_calls[i];
      if (i == shown_arguments_.size()) {
        if (partial && call.arguments.empty()) return;
        shown_arguments_.push_back(call.arguments);
        delta->tool_calls.push_back({i, call.id, call.name, call.arguments});
        continue;
      }
      const std::string more = continuation(shown_arguments_[i], call.arguments);
      if (more.empty()) continue;
      shown_arguments_[i] = call.arguments;
      delta->tool_calls.push_back({i, "", "", more});
    }
  }

  common_chat_parser_params params_;
  std::string raw_;
  common_chat_msg parsed_;
  std::vector<std::string> call_ids_;
  std::vector<std::string> shown_arguments_;  // of the calls shown so far
};

class PlainTextParser : public ChatOutputParser {
 public:
  ChatDelta push(const std::string& text) override {
    content_ += text;
    return {text, "", {}};
  }
  ChatDelta finish() override { return {}; }
  ChatMessage message() const override { return {"assistant", content_, "", {}, "", ""}; }

 private:
  std::string content_;
};

GrammarTrigger::Kind trigger_kind(common_grammar_trigger_type type) {
  switch (type) {
    case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN: return GrammarTrigger::Kind::PATTERN;
    case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL: return GrammarTrigger::Kind::PATTERN_FULL;
    default:
      // A token trigger comes as its text: the backends keep special tokens' text in the output.
      return GrammarTrigger::Kind::WORD;
  }
}

// llama.cpp's grammars let text and reasoning come before a required call. OpenAI's `required`
// answers with calls only, and a model that does not stop talking would never call: the root
// rule is cut down to the end of the prompt and the calls (the last symbol of the root, which
// these grammars name tool-call or tool-calls; one tool-call without parallel calls). A grammar
// of another shape is kept as it is.
std::string calls_only(const std::string& gbnf, const std::string& generation_prompt,
                       bool parallel) {
  const std::string root = "root ::= ";
  size_t begin = gbnf.compare(0, root.size(), root) == 0 ? 0 : gbnf.find("\n" + root);
  if (begin == std::string::npos) return gbnf;
  if (begin != 0) ++begin;
  size_t end = gbnf.find('\n', begin);
  if (end == std::string::npos) end = gbnf.size();
  const std::string rule = gbnf.substr(begin, end - begin);
  std::string last = rule.substr(rule.find_last_of(' ') + 1);
  if (last != "tool-call" && last != "tool-calls") return gbnf;
  // Without parallel calls, one call (some formats' grammars repeat it regardless).
  if (!parallel) last = "tool-call";
  std::string calls_root = root;
  if (!generation_prompt.empty()) {
    calls_root += nlohmann::ordered_json(generation_prompt).dump() + " ";
  }
  return gbnf.substr(0, begin) + calls_root + last + gbnf.substr(end);
}

// The tool-call grammar the template's format asks for.
GrammarConstraint tool_grammar(const common_chat_params& params, const ChatOptions& options) {
  GrammarConstraint grammar;
  grammar.gbnf = params.grammar;
  if (options.tool_choice == ToolChoice::REQUIRED && !params.grammar_lazy) {
    grammar.gbnf =
        calls_only(params.grammar, params.generation_prompt, options.parallel_tool_calls);
  }
  grammar.lazy = params.grammar_lazy;
  for (const common_grammar_trigger& trigger : params.grammar_triggers) {
    grammar.triggers.push_back({trigger_kind(trigger.type), trigger.value, -1});
  }
  if (!grammar.lazy) grammar.prefill = params.generation_prompt;
  return grammar;
}

common_chat_tool_choice common_tool_choice(ToolChoice choice) {
  switch (choice) {
    case ToolChoice::REQUIRED: return COMMON_CHAT_TOOL_CHOICE_REQUIRED;
    case ToolChoice::NONE: return COMMON_CHAT_TOOL_CHOICE_NONE;
    default: return COMMON_CHAT_TOOL_CHOICE_AUTO;
  }
}

// A call id as templates render it: nine letters and digits (Mistral's templates refuse any other
// shape), the same for a call and its result. Ids of that shape are kept.
std::string template_call_id(const std::string& id) {
  const bool short_id = id.size() == 9 && std::all_of(id.begin(), id.end(), [](char c) {
                          return std::isalnum(static_cast<unsigned char>(c));
                        });
  if (short_id || id.empty()) return id;
  static const char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  uint64_t hash = 14695981039346656037ull;  // FNV-1a
  for (unsigned char c : id) hash = (hash ^ c) * 1099511628211ull;
  std::string out;
  for (int i = 0; i < 9; ++i, hash /= 62) out += kDigits[hash % 62];
  return out;
}

common_chat_msg common_message(const ChatMessage& message) {
  common_chat_msg msg;
  msg.role = message.role;
  msg.content = message.content;
  msg.reasoning_content = message.reasoning;
  msg.tool_call_id = template_call_id(message.tool_call_id);
  msg.tool_name = message.tool_name;
  for (const ToolCall& call : message.tool_calls) {
    msg.tool_calls.push_back({call.name, call.arguments, template_call_id(call.id)});
  }
  return msg;
}

class CommonChatFormatter : public ChatFormatter {
 public:
  explicit CommonChatFormatter(common_chat_templates_ptr templates)
      : templates_(std::move(templates)),
        native_tools_(common_chat_templates_get_caps(templates_.get())["supports_tool_calls"]) {}

  Error format(const std::vector<ChatMessage>& messages, const ChatOptions& options,
               FormattedChat* out) const override {
    const bool generic = options.calls_or_answers_json() ||
                         (!native_tools_ && (options.calls_tools() || has_tool_turns(messages)));
    common_chat_templates_inputs inputs;
    for (const ChatMessage& message :
         generic ? generic_tool_messages(messages, options) : messages) {
      inputs.messages.push_back(common_message(message));
    }
    if (!generic && options.calls_tools()) {
      for (const FunctionTool& tool : options.tools) {
        inputs.tools.push_back({tool.name, tool.description, tool.parameters});
      }
      inputs.tool_choice = common_tool_choice(options.tool_choice);
      inputs.parallel_tool_calls = options.parallel_tool_calls;
    }
    if (!options.reasoning_effort.empty()) {
      inputs.chat_template_kwargs["reasoning_effort"] =
          nlohmann::ordered_json(options.reasoning_effort).dump();
    }
    inputs.enable_thinking = options.enable_thinking;
    inputs.add_generation_prompt = true;
    inputs.use_jinja = true;
    inputs.reasoning_format = COMMON_REASONING_FORMAT_DEEPSEEK;
    common_chat_params params;
    try {
      params = common_chat_templates_apply(templates_.get(), inputs);
    } catch (const std::exception& e) {
      return make_error(ErrorCode::INTERNAL,
                        std::string("the model's chat template failed: ") + e.what());
    }
    common_chat_parser_params parser_params(params);
    parser_params.reasoning_format = COMMON_REASONING_FORMAT_DEEPSEEK;
    if (!params.parser.empty()) parser_params.parser.load(params.parser);
    out->prompt = std::move(params.prompt);
    out->extra_stops = std::move(params.additional_stops);
    out->parser = std::make_unique<CommonChatOutputParser>(std::move(parser_params));
    if (generic && options.calls_tools()) {
      if (Error e = generic_tool_grammar(options, &out->grammar)) return e;
      out->parser = generic_tool_parser(std::move(out->parser), options);
    } else if (!inputs.tools.empty()) {
      out->grammar = tool_grammar(params, options);
    }
    return {};
  }

 private:
  static bool has_tool_turns(const std::vector<ChatMessage>& messages) {
    for (const ChatMessage& message : messages) {
      if (message.role == "tool" || !message.tool_calls.empty()) return true;
    }
    return false;
  }

  common_chat_templates_ptr templates_;
  bool native_tools_;  // the template renders tools and calls itself
};

}  // namespace

std::unique_ptr<ChatOutputParser> plain_text_parser() {
  return std::make_unique<PlainTextParser>();
}

std::unique_ptr<ChatFormatter> ChatFormatter::create(const std::string& jinja_template,
                                                     const std::string& bos_text,
                                                     const std::string& eos_text, Error* error) {
  try {
    // llama.cpp's chat layer names its built-in fallback "chatml"; an empty string would make it
    // look for a template in a model it is not given.
    const std::string source = jinja_template.empty() ? "chatml" : jinja_template;
    auto templates = common_chat_templates_init(nullptr, source, bos_text, eos_text);
    if (!templates) {
      *error = make_error(ErrorCode::LOAD_FAILED, "the model's chat template could not be read");
      return nullptr;
    }
    return std::make_unique<CommonChatFormatter>(std::move(templates));
  } catch (const std::exception& e) {
    *error = make_error(ErrorCode::LOAD_FAILED,
                        std::string("the model's chat template is invalid: ") + e.what());
    return nullptr;
  }
}

}  // namespace allm
