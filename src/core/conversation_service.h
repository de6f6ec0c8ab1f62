// Conversations of the Responses API: a new response continues the stored conversation of its
// previous_response_id, and a finished one is stored with its conversation so that the next can
// continue it. The HTTP layer translates requests into items and calls this; the response store
// below keeps what it is given.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "text/chat_format.h"

namespace allm {

class ResponseStore;

// One item of a conversation. Only messages so far; function calls and their outputs join as
// further types.
struct ConversationItem {
  enum class Type { MESSAGE };
  Type type = Type::MESSAGE;
  std::string role;  // MESSAGE: system, user or assistant
  std::string content;
};
using Conversation = std::vector<ConversationItem>;

// What the model continues: the instructions (when given) as a system message, then the items.
std::vector<ChatMessage> chat_messages(const std::optional<std::string>& instructions,
                                       const Conversation& conversation);

// How a conversation is kept in the store: a JSON array of {"role","content"} messages.
std::string conversation_to_json(const Conversation& conversation);
bool conversation_from_json(const std::string& text, Conversation* conversation);

// A response that ended and is to be stored.
struct FinishedResponse {
  std::string id;
  std::string object_json;    // the response object as returned to the client
  Conversation conversation;  // what the model was given: the history, then the input
  Conversation output;        // what it answered
};

class ConversationService {
 public:
  explicit ConversationService(ResponseStore& store) : store_(store) {}

  // The conversation a response continues: that stored with `previous_response_id` (a not_found
  // error on that param when there is none), or an empty one without it.
  Error history(const std::optional<std::string>& previous_response_id, Conversation* conversation);
  // Appends a request's input items to the conversation it continues.
  static void append_input(Conversation* conversation, Conversation input);

  // Stores the response with its conversation, the output appended; durable on success.
  Error save(const FinishedResponse& response);

  // The stored response object `id`, as it was returned (a not_found error on response_id when
  // there is none).
  Error find(const std::string& id, std::string* object_json);
  // Deletes the stored response `id` (a not_found error on response_id when there is none).
  Error remove(const std::string& id);

 private:
  ResponseStore& store_;
};

}  // namespace allm
