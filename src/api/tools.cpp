#include "api/tools.h"

#include <set>

#include "api/output_format.h"
#include "text/json_schema.h"

namespace allm {

namespace {

// OpenAI's limit on tools per request.
constexpr size_t kMaxTools = 128;

// Tool types of the OpenAI reference that run on OpenAI's side (or the client's, for custom
// tools with free-form input); none is offered here.
const std::set<std::string> kBuiltinTools = {"web_search",
                                             "web_search_preview",
                                             "web_search_2025_08_26",
                                             "web_search_preview_2025_03_11",
                                             "file_search",
                                             "code_interpreter",
                                             "computer_use_preview",
                                             "computer_use",
                                             "image_generation",
                                             "mcp",
                                             "local_shell",
                                             "shell",
                                             "apply_patch",
                                             "custom"};

Error optional_string(const json& object, const char* key, const std::string& param) {
  if (!object.contains(key) || object[key].is_null() || object[key].is_string()) return {};
  return request_error("'" + std::string(key) + "' must be a string", param + "." + key);
}

// A function definition {name, description, parameters, strict} at `param`; Anthropic names the
// parameters' schema `input_schema` (`schema_key`).
Error read_function(const json& spec, const std::string& param, const std::set<std::string>& known,
                    FunctionTool* tool, json* echo, const std::string& schema_key = "parameters") {
  if (Error e = refuse_unknown_fields(spec, known, param)) return e;
  const std::string name = text_member(spec, "name", "");
  if (!spec.contains("name") || !spec["name"].is_string() || !valid_api_name(name)) {
    return request_error(
        "a function's 'name' must be 1 to 64 letters, digits, underscores or "
        "dashes",
        param + ".name");
  }
  if (Error e = optional_string(spec, "description", param)) return e;
  if (spec.contains("strict") && !spec["strict"].is_null() && !spec["strict"].is_boolean()) {
    return request_error("'strict' must be a boolean", param + ".strict");
  }
  json parameters = spec.value(schema_key, json(nullptr));
  if (!parameters.is_null() && !parameters.is_object()) {
    return request_error("'" + schema_key + "' must be a JSON Schema object",
                         param + "." + schema_key);
  }
  // No parameters (or {}): the function takes an empty object.
  if (parameters.is_null() || parameters.empty()) {
    parameters = {{"type", "object"}, {"properties", json::object()}};
  }
  if (parameters.contains("type") && parameters["type"] != "object") {
    return request_error("a function's parameters must be an object schema (type: object)",
                         param + "." + schema_key + ".type");
  }
  // Strict or not, the calls follow the schema: it is part of the tool-call grammar.
  std::string unused_gbnf;
  if (Error e = json_schema_grammar(parameters, param + "." + schema_key, &unused_gbnf)) return e;
  tool->name = name;
  tool->description = text_member(spec, "description", "");
  tool->parameters = parameters.dump();
  *echo = {{"type", "function"},
           {"name", name},
           {"description", spec.value("description", json(nullptr))},
           {"parameters", spec.value("parameters", json(nullptr))},
           {"strict", spec.value("strict", json(true))}};
  return {};
}

// An Anthropic tool: a client tool (type absent or "custom"); Anthropic's server tools (web
// search, code execution, ...) and client tools with schemas of Anthropic's own (bash, text
// editor, computer use) are refused by their type.
Error read_anthropic_tool(const json& item, const std::string& param, FunctionTool* tool,
                          json* echo) {
  const std::string type = text_member(item, "type", "custom");
  if (type != "custom") {
    return unsupported_error("'" + quote_excerpt(type) +
                                 "' tools are not offered; send client tools with a name, "
                                 "description and input_schema",
                             param + ".type");
  }
  if (Error e = check_cache_control(item, param)) return e;
  return read_function(item, param,
                       {"type", "name", "description", "input_schema", "cache_control"}, tool, echo,
                       "input_schema");
}

Error read_tool(const json& item, const std::string& param, ToolDialect dialect, FunctionTool* tool,
                json* echo) {
  if (!item.is_object()) return request_error("a tool must be an object", param);
  if (dialect == ToolDialect::ANTHROPIC) return read_anthropic_tool(item, param, tool, echo);
  if (!item.contains("type") || !item["type"].is_string()) {
    return request_error("a tool needs a string 'type'", param + ".type");
  }
  const std::string type = item["type"].get<std::string>();
  if (kBuiltinTools.count(type)) {
    return unsupported_error("'" + type +
                                 "' tools are not offered: this server runs no built-in tools; "
                                 "send function tools and run them in the client",
                             param + ".type");
  }
  if (type != "function") {
    return request_error("unknown tool type '" + quote_excerpt(type) + "'", param + ".type");
  }
  if (dialect == ToolDialect::RESPONSES) {
    return read_function(item, param, {"type", "name", "description", "parameters", "strict"}, tool,
                         echo);
  }
  if (Error e = refuse_unknown_fields(item, {"type", "function"}, param)) return e;
  if (!item.contains("function") || !item["function"].is_object()) {
    return request_error("a function tool needs a 'function' object", param + ".function");
  }
  return read_function(item["function"], param + ".function",
                       {"name", "description", "parameters", "strict"}, tool, echo);
}

Error read_tool_list(const json& body, ToolDialect dialect, RequestTools* out) {
  if (!body.contains("tools") || body["tools"].is_null()) return {};
  const json& tools = body["tools"];
  if (!tools.is_array()) return request_error("'tools' must be an array", "tools");
  if (tools.size() > kMaxTools) {
    return request_error("at most 128 tools may be sent, got " + std::to_string(tools.size()),
                         "tools");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string param = "tools[" + std::to_string(i) + "]";
    FunctionTool tool;
    json echo;
    if (Error e = read_tool(tools[i], param, dialect, &tool, &echo)) return e;
    if (!names.insert(tool.name).second) {
      return request_error("two tools are named '" + tool.name + "'", param);
    }
    out->options.tools.push_back(std::move(tool));
    out->echo_tools.push_back(std::move(echo));
  }
  return {};
}

// A named choice: only that function is offered, and it must be called.
Error choose_function(const std::string& name, const std::string& param, RequestTools* out) {
  for (const FunctionTool& tool : out->options.tools) {
    if (tool.name != name) continue;
    out->options.tools = {tool};
    out->options.tool_choice = ToolChoice::REQUIRED;
    return {};
  }
  return request_error("tool_choice names the function '" + quote_excerpt(name) +
                           "', which is not among the request's tools",
                       param);
}

Error read_named_choice(const json& choice, ToolDialect dialect, RequestTools* out) {
  const std::string type = text_member(choice, "type", "");
  if (type != "function") {
    if (type == "allowed_tools" || kBuiltinTools.count(type)) {
      return unsupported_error("tool_choice of type '" + type +
                                   "' is not offered; use auto, none, required or a function",
                               "tool_choice.type");
    }
    return request_error("tool_choice must be auto, none, required or {\"type\": \"function\"}",
                         "tool_choice.type");
  }
  if (dialect == ToolDialect::RESPONSES) {
    if (Error e = refuse_unknown_fields(choice, {"type", "name"}, "tool_choice")) return e;
    if (!choice.contains("name") || !choice["name"].is_string()) {
      return request_error("a named tool_choice needs the function's 'name'", "tool_choice.name");
    }
    return choose_function(choice["name"].get<std::string>(), "tool_choice.name", out);
  }
  if (Error e = refuse_unknown_fields(choice, {"type", "function"}, "tool_choice")) return e;
  const json function = choice.value("function", json(nullptr));
  if (!function.is_object() || !function.contains("name") || !function["name"].is_string()) {
    return request_error("a named tool_choice needs 'function': {\"name\": ...}",
                         "tool_choice.function");
  }
  if (Error e = refuse_unknown_fields(function, {"name"}, "tool_choice.function")) return e;
  return choose_function(function["name"].get<std::string>(), "tool_choice.function.name", out);
}

// Anthropic's tool_choice: {type: auto | any | tool (with `name`) | none,
// disable_parallel_tool_use}.
Error read_anthropic_tool_choice(const json& choice, RequestTools* out) {
  if (!choice.is_object()) return request_error("'tool_choice' must be an object", "tool_choice");
  const std::string type = text_member(choice, "type", "");
  const bool named = type == "tool";
  if (type != "auto" && type != "any" && type != "none" && !named) {
    return request_error("tool_choice.type must be auto, any, tool or none", "tool_choice.type");
  }
  std::set<std::string> known = {"type"};
  if (type != "none") known.insert("disable_parallel_tool_use");
  if (named) known.insert("name");
  if (Error e = refuse_unknown_fields(choice, known, "tool_choice")) return e;
  const json no_parallel = choice.value("disable_parallel_tool_use", json(false));
  if (!no_parallel.is_boolean()) {
    return request_error("'disable_parallel_tool_use' must be a boolean",
                         "tool_choice.disable_parallel_tool_use");
  }
  out->options.parallel_tool_calls = !no_parallel.get<bool>();
  if (type == "auto") return {};
  if (type == "none") {
    out->options.tool_choice = ToolChoice::NONE;
    return {};
  }
  if (out->options.tools.empty()) {
    return request_error("tool_choice asks for a call, but the request has no tools",
                         "tool_choice");
  }
  out->options.tool_choice = ToolChoice::REQUIRED;
  if (!named) return {};
  if (!choice.contains("name") || !choice["name"].is_string()) {
    return request_error("tool_choice of type 'tool' needs the tool's 'name'", "tool_choice.name");
  }
  return choose_function(choice["name"].get<std::string>(), "tool_choice.name", out);
}

Error read_tool_choice(const json& body, ToolDialect dialect, RequestTools* out) {
  if (!body.contains("tool_choice") || body["tool_choice"].is_null()) return {};
  const json& choice = body["tool_choice"];
  if (dialect == ToolDialect::ANTHROPIC) return read_anthropic_tool_choice(choice, out);
  out->echo_choice = choice;
  if (choice == "auto") return {};
  if (choice == "none") {
    out->options.tool_choice = ToolChoice::NONE;
    return {};
  }
  const bool required = choice == "required";
  if (!required && !choice.is_object()) {
    return request_error("tool_choice must be auto, none, required or a named function",
                         "tool_choice");
  }
  if (out->options.tools.empty()) {
    return request_error("tool_choice asks for a call, but the request has no tools",
                         "tool_choice");
  }
  if (required) {
    out->options.tool_choice = ToolChoice::REQUIRED;
    return {};
  }
  return read_named_choice(choice, dialect, out);
}

}  // namespace

std::string called_function(const std::vector<ChatMessage>& messages, const std::string& id) {
  for (const ChatMessage& message : messages) {
    for (const ToolCall& call : message.tool_calls) {
      if (call.id == id) return call.name;
    }
  }
  return "";
}

Error check_cache_control(const json& object, const std::string& param) {
  const json value = object.value("cache_control", json(nullptr));
  const std::string value_param = param + ".cache_control";
  if (value.is_null()) return {};
  if (!value.is_object() || value.value("type", json(nullptr)) != "ephemeral") {
    return request_error("'cache_control' must be {\"type\": \"ephemeral\"}", value_param);
  }
  if (Error e = refuse_unknown_fields(value, {"type", "ttl"}, value_param)) return e;
  const json ttl = value.value("ttl", json("5m"));
  if (ttl != "5m" && ttl != "1h") {
    return request_error("'ttl' must be '5m' or '1h'", value_param + ".ttl");
  }
  return {};
}

Error read_tools(const json& body, ToolDialect dialect, RequestTools* out) {
  if (Error e = read_tool_list(body, dialect, out)) return e;
  if (Error e = read_tool_choice(body, dialect, out)) return e;
  // Its type was checked with the other request fields.
  if (body.contains("parallel_tool_calls") && body["parallel_tool_calls"].is_boolean()) {
    out->options.parallel_tool_calls = body["parallel_tool_calls"].get<bool>();
  }
  return {};
}

}  // namespace allm
