// Function tools for chat templates that do not describe tools: the tools are listed in the
// system message, the model answers a call as one JSON object {"tool_calls": [{"name",
// "arguments"}]} (held to that shape and to each tool's parameter schema by a grammar), and calls
// and their outputs in the history are rendered as ordinary assistant and user text.
#pragma once

#include <memory>
#include <vector>

#include "text/chat_format.h"

namespace allm {

// `messages` rewritten for a template without tool support: the tool list joins the system
// message, assistant calls become their JSON object, tool outputs become user messages.
std::vector<ChatMessage> generic_tool_messages(const std::vector<ChatMessage>& messages,
                                               const ChatOptions& options);

// The grammar of the call object: from its start for tool_choice required; with an answer schema,
// the call object or the answer from the start; else lazy, from the first `{"tool_calls"` on.
Error generic_tool_grammar(const ChatOptions& options, GrammarConstraint* grammar);

// Splits the answer into text (parsed by `content_parser`, the template's own) and the calls of
// the JSON object, which are read when it is complete. The object may come after text only when
// the grammar is lazy.
std::unique_ptr<ChatOutputParser> generic_tool_parser(
    std::unique_ptr<ChatOutputParser> content_parser, const ChatOptions& options);

}  // namespace allm
