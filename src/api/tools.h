// Function tools in requests: `tools`, `tool_choice` and `parallel_tool_calls` of both text
// endpoints, read into the chat options the chat template and the tool-call grammar follow.
// Built-in tool types (web search, file search, ...) run nowhere here and are refused by name.
#pragma once

#include "api/http_util.h"
#include "text/chat_format.h"

namespace allm {

// The two endpoints spell tools differently: Responses {type, name, description, parameters,
// strict}, Chat Completions {type, function: {name, description, parameters, strict}}; a named
// tool_choice likewise ({type, name} and {type, function: {name}}).
// Anthropic's Messages API: {name, description, input_schema, type: "custom", cache_control}
// and tool_choice {type: auto | any | tool | none, name, disable_parallel_tool_use}.
enum class ToolDialect { RESPONSES, CHAT, ANTHROPIC };

struct RequestTools {
  ChatOptions options;  // the tools the model may call (one, for a named tool_choice)
  // As the response object echoes them (Responses): every tool, and the choice as given.
  json echo_tools = json::array();
  json echo_choice = "auto";
};

Error read_tools(const json& body, ToolDialect dialect, RequestTools* out);

// The function of the call `id` made earlier in `messages` (a tool result's call); empty when
// there is none.
std::string called_function(const std::vector<ChatMessage>& messages, const std::string& id);

// Anthropic's `cache_control` ({type: "ephemeral", ttl}) on a block or tool at `param`: prompt
// prefixes are reused on every request here, so a breakpoint has nothing left to do; its shape
// is checked.
Error check_cache_control(const json& object, const std::string& param);

}  // namespace allm
