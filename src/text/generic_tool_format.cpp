#include "text/generic_tool_format.h"

#include <algorithm>
#include <vector>

#include "text/json_schema.h"

namespace allm {

namespace {

using json = nlohmann::ordered_json;

constexpr const char* kCallKey = "\"tool_calls\"";

// A call's arguments as a JSON value (kept as a string when they are not JSON).
json arguments_value(const std::string& arguments) {
  json value = json::parse(arguments, nullptr, false);
  return value.is_discarded() ? json(arguments) : value;
}

std::string tool_list_text(const ChatOptions& options) {
  std::string text =
      options.tool_choice == ToolChoice::REQUIRED
          ? "You must call one of the functions below. Answer with only a JSON object"
          : "You may call the functions below. To call one, answer with only a JSON object";
  text +=
      " of the form {\"tool_calls\": [{\"name\": <function name>, \"arguments\": <arguments "
      "object>}]}";
  if (options.tool_choice != ToolChoice::REQUIRED) text += "; otherwise answer as usual";
  text += ". The results of calls come back in the next user message.\n\nFunctions:";
  for (const FunctionTool& tool : options.tools) {
    json entry = {{"name", tool.name}};
    if (!tool.description.empty()) entry["description"] = tool.description;
    entry["parameters"] = arguments_value(tool.parameters);
    text += "\n" + entry.dump();
  }
  return text;
}

std::string calls_text(const std::vector<ToolCall>& calls) {
  json list = json::array();
  for (const ToolCall& call : calls) {
    list.push_back({{"name", call.name}, {"arguments", arguments_value(call.arguments)}});
  }
  return json{{"tool_calls", list}}.dump();
}

// Whether the grammar holds from the first token (no text can come before a call).
bool calls_at_start(const ChatOptions& options) {
  return options.tool_choice == ToolChoice::REQUIRED || options.calls_or_answers_json();
}

// Moves the $defs of one tool's parameters to `root_defs` under `prefix`, renaming its
// references to them (a tool's "#/$defs/X" means its own, not the combined schema's).
void hoist_definitions(json* parameters, const std::string& prefix, json* root_defs) {
  const std::string local = "#/$defs/";
  std::vector<json*> todo = {parameters};
  while (!todo.empty()) {
    json* node = todo.back();
    todo.pop_back();
    if (node->is_object()) {
      auto ref = node->find("$ref");
      if (ref != node->end() && ref->is_string()) {
        const std::string target = ref->get<std::string>();
        if (target.compare(0, local.size(), local) == 0) {
          *ref = local + prefix + target.substr(local.size());
        }
      }
    }
    if (node->is_structured()) {
      for (json& child : *node) todo.push_back(&child);
    }
  }
  if (parameters->is_object() && parameters->contains("$defs")) {
    for (auto& [name, schema] : (*parameters)["$defs"].items())
      (*root_defs)[prefix + name] = schema;
    parameters->erase("$defs");
  }
}

// The schema of the call object: each call names one tool and carries arguments its schema
// admits; one call unless parallel calls are allowed.
json call_object_schema(const ChatOptions& options) {
  json variants = json::array();
  json defs = json::object();
  for (size_t i = 0; i < options.tools.size(); ++i) {
    const FunctionTool& tool = options.tools[i];
    json parameters = json::parse(tool.parameters, nullptr, false);
    if (parameters.is_discarded() || !parameters.is_object() || parameters.empty()) {
      parameters = {{"type", "object"}};
    }
    hoist_definitions(&parameters, "tool" + std::to_string(i) + "_", &defs);
    variants.push_back(
        {{"type", "object"},
         {"properties", {{"name", {{"const", tool.name}}}, {"arguments", parameters}}},
         {"required", {"name", "arguments"}},
         {"additionalProperties", false}});
  }
  json calls = {{"type", "array"}, {"items", {{"anyOf", variants}}}, {"minItems", 1}};
  if (!options.parallel_tool_calls) calls["maxItems"] = 1;
  json schema = {{"type", "object"},
                 {"properties", {{"tool_calls", calls}}},
                 {"required", {"tool_calls"}},
                 {"additionalProperties", false}};
  if (!defs.empty()) schema["$defs"] = defs;
  return schema;
}

// Where the call object starts in `text`: a '{', the blank the grammar allows after it (a space,
// or one or two newlines and up to 20 spaces or tabs), then "tool_calls"; npos when it has not
// (yet).
// `*partial_from` is where a start that may still be completed begins (npos: none). The search
// begins at `from`.
size_t find_call_start(const std::string& text, size_t from, size_t* partial_from) {
  *partial_from = std::string::npos;
  const std::string key = kCallKey;
  for (size_t brace = text.find('{', from); brace != std::string::npos;
       brace = text.find('{', brace + 1)) {
    size_t at = brace + 1;
    if (at < text.size() && text[at] == ' ') {
      ++at;
    } else if (at < text.size() && text[at] == '\n') {
      if (++at < text.size() && text[at] == '\n') ++at;
      const size_t indent_end = std::min(text.size(), at + 20);
      while (at < indent_end && (text[at] == ' ' || text[at] == '\t')) ++at;
    }
    const size_t have = std::min(key.size(), text.size() - at);
    if (text.compare(at, have, key, 0, have) != 0) continue;
    if (have == key.size()) return brace;
    if (*partial_from == std::string::npos) *partial_from = brace;
  }
  return std::string::npos;
}

class GenericToolParser : public ChatOutputParser {
 public:
  GenericToolParser(std::unique_ptr<ChatOutputParser> content, bool calls_at_start)
      : content_(std::move(content)), calls_at_start_(calls_at_start) {}

  ChatDelta push(const std::string& text) override {
    raw_ += text;
    if (call_start_ != std::string::npos) return {};
    // Where the grammar holds from the start, text forwarded means no call can follow.
    if (calls_at_start_ && forwarded_ > 0) return forward_text(raw_.size());
    // The text already forwarded holds no start of a call, not even a partial one.
    size_t partial = std::string::npos;
    call_start_ = find_call_start(raw_, forwarded_, &partial);
    // Where the grammar holds from the start, only an object there is the call object.
    if (calls_at_start_ && call_start_ != std::string::npos && call_start_ != 0) {
      call_start_ = std::string::npos;
    }
    if (calls_at_start_ && partial != 0) partial = std::string::npos;
    // Text before the call (or a start that may become one) is the template's to parse.
    const size_t free_end = std::min(call_start_, partial);
    const size_t end = free_end == std::string::npos ? raw_.size() : free_end;
    return forward_text(end);
  }

  ChatDelta finish() override {
    ChatDelta delta;
    if (call_start_ == std::string::npos) {
      delta = forward_text(raw_.size());
    } else if (!read_calls(raw_.substr(call_start_), &message_.tool_calls)) {
      delta = forward_text(raw_.size());  // not a call after all: the text is the answer
    }
    ChatDelta last = content_->finish();
    delta.content += last.content;
    delta.reasoning += last.reasoning;
    const ChatMessage text = content_->message();
    message_.content = text.content;
    message_.reasoning = text.reasoning;
    for (size_t i = 0; i < message_.tool_calls.size(); ++i) {
      const ToolCall& call = message_.tool_calls[i];
      delta.tool_calls.push_back({i, call.id, call.name, call.arguments});
    }
    return delta;
  }

  ChatMessage message() const override { return message_; }

 private:
  ChatDelta forward_text(size_t end) {
    if (end <= forwarded_) return {};
    const std::string text = raw_.substr(forwarded_, end - forwarded_);
    forwarded_ = end;
    return content_->push(text);
  }

  static bool read_calls(const std::string& text, std::vector<ToolCall>* calls) {
    const json object = json::parse(text, nullptr, false);
    if (object.is_discarded() || !object.is_object() || !object.contains("tool_calls") ||
        !object["tool_calls"].is_array()) {
      return false;
    }
    for (const json& call : object["tool_calls"]) {
      if (!call.is_object() || !call.contains("name") || !call["name"].is_string()) return false;
      const json arguments = call.value("arguments", json::object());
      calls->push_back({new_tool_call_id(), call["name"].get<std::string>(),
                        arguments.is_string() ? arguments.get<std::string>() : arguments.dump()});
    }
    return !calls->empty();
  }

  std::unique_ptr<ChatOutputParser> content_;
  bool calls_at_start_;
  std::string raw_;
  size_t forwarded_ = 0;
  size_t call_start_ = std::string::npos;
  ChatMessage message_{"assistant", "", "", {}, "", ""};
};

}  // namespace

std::vector<ChatMessage> generic_tool_messages(const std::vector<ChatMessage>& messages,
                                               const ChatOptions& options) {
  std::vector<ChatMessage> out;
  const std::string tools = options.calls_tools() ? tool_list_text(options) : "";
  const bool has_system = !messages.empty() && messages.front().role == "system";
  if (!tools.empty() && !has_system) out.push_back({"system", tools, "", {}, "", ""});
  bool after_result = false;  // the last message rendered holds a tool result
  for (const ChatMessage& message : messages) {
    ChatMessage rendered{message.role, message.content, message.reasoning, {}, "", ""};
    const bool result = message.role == "tool";
    if (&message == &messages.front() && has_system && !tools.empty()) {
      rendered.content += "\n\n" + tools;
    } else if (result) {
      rendered.role = "user";
      // Results follow their calls in order; the ids (random) would only make prompts differ.
      rendered.content = "Result of " + message.tool_name + ":\n" + message.content;
    } else if (!message.tool_calls.empty()) {
      rendered.content += (rendered.content.empty() ? "" : "\n") + calls_text(message.tool_calls);
    }
    // A result next to another user turn joins it: some templates (Gemma's) insist that user
    // and assistant turns alternate.
    const bool merge = (result || after_result) && rendered.role == "user" && !out.empty() &&
                       out.back().role == "user";
    if (merge) {
      out.back().content += "\n\n" + rendered.content;
    } else {
      out.push_back(std::move(rendered));
    }
    after_result = result || merge;
  }
  return out;
}

Error generic_tool_grammar(const ChatOptions& options, GrammarConstraint* grammar) {
  *grammar = GrammarConstraint{};
  json schema = call_object_schema(options);
  if (options.calls_or_answers_json()) {
    json answer = json::parse(options.answer_schema, nullptr, false);
    json defs = schema.value("$defs", json::object());
    hoist_definitions(&answer, "answer_", &defs);
    schema.erase("$defs");
    schema = {{"anyOf", {schema, answer}}};
    if (!defs.empty()) schema["$defs"] = defs;
  }
  if (Error e = json_schema_grammar(schema, "tools", &grammar->gbnf)) return e;
  if (!calls_at_start(options)) {
    grammar->lazy = true;
    grammar->triggers.push_back({GrammarTrigger::Kind::PATTERN,
                                 std::string("\\{(?: |\n{1,2}[ \t]{0,20})?") + kCallKey, -1});
  }
  return {};
}

std::unique_ptr<ChatOutputParser> generic_tool_parser(
    std::unique_ptr<ChatOutputParser> content_parser, const ChatOptions& options) {
  return std::make_unique<GenericToolParser>(std::move(content_parser), calls_at_start(options));
}

}  // namespace allm
