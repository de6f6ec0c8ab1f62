// Conversations of the Responses API: a new response continues the stored conversation of its
// previous_response_id, and a finished one is stored with its conversation so that the next can
// continue it. The HTTP layer translates requests into items and calls this; the response store
// below keeps what it is given.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "text/chat_format.h"

namespace allm {

class ResponseStore;

// One item of a conversation: a message, a function call the model made, or the output of one
// (which the client ran).
struct ConversationItem {
  enum class Type { MESSAGE, FUNCTION_CALL, FUNCTION_CALL_OUTPUT };
  Type type = Type::MESSAGE;
  std::string role;       // MESSAGE: system, user or assistant
  std::string content;    // MESSAGE: its text; FUNCTION_CALL_OUTPUT: the output
  std::string id;         // msg_/fc_/fco_...: the API names new items; stored ones keep their names
  std::string call_id;    // FUNCTION_CALL and its output: what pairs them
  std::string name;       // FUNCTION_CALL: the function
  std::string arguments;  // FUNCTION_CALL: the text of a JSON object
};
using Conversation = std::vector<ConversationItem>;

// What the model continues: the instructions (when given) as a system message, then the items;
// function calls join the assistant message before them, outputs are tool messages.
std::vector<ChatMessage> chat_messages(const std::optional<std::string>& instructions,
                                       const Conversation& conversation);

// The call `call_id` in `conversation`; null when there is none.
const ConversationItem* find_function_call(const Conversation& conversation,
                                           const std::string& call_id);

// How a conversation is kept in the store: a JSON array of {"id","role","content"} messages
// (function calls and outputs with their "type", "call_id", "name", "arguments", "content"), the
// last `output_items` (what the response answered) marked "output": true. Records written before
// items had ids have none and no marks: their items are named msg_<response>_<index> when read
// (`response_id`: the record's), and their last item is the output.
std::string conversation_to_json(const Conversation& conversation, size_t output_items = 0);
bool conversation_from_json(const std::string& text, const std::string& response_id,
                            Conversation* conversation, size_t* output_items = nullptr);

// A page of a response's input items: `limit` of them, after the item `after` when given, oldest
// first when `ascending`.
struct ItemQuery {
  size_t limit = 20;
  bool ascending = false;
  std::optional<std::string> after;
};
struct ItemPage {
  Conversation items;
  bool has_more = false;
};

// Whether a stored response object is still queued or in progress (a background response).
bool in_progress(const std::string& object_json);

// A response to be stored: one that ended, or a background one that starts (no output yet).
struct FinishedResponse {
  std::string id;
  std::string object_json;    // the response object as returned to the client
  Conversation conversation;  // what the model was given: the history, then the input
  Conversation output;        // what it answered
};

// How often the replica running a background response renews its lease on a shared store, and
// how old a lease may get before the response counts as abandoned (its replica gone).
constexpr double kLeaseRenewalSeconds = 1;
constexpr double kLeaseExpirySeconds = 10;

class ConversationService {
 public:
  explicit ConversationService(ResponseStore& store);

  // The conversation a response continues: that stored with `previous_response_id` (a not_found
  // error on that param when there is none, an error when it is still in progress), or an empty
  // one without it.
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
  // The items the response `id` was given (its history and input, not its output), paged; an
  // `after` that names none of them is an error on that param.
  Error input_items(const std::string& id, const ItemQuery& query, ItemPage* page);
  // Whether the store can be reached now; when it cannot, store_unavailable() says why.
  bool store_available();
  // An error when a response could not be stored now (its database down), before it is made.
  Error check_storable();

  // Background responses on a store that replicas share (no-ops on one that is not): this
  // replica takes the lease of one it starts, renews it while it runs (`*cancel_requested`:
  // another replica asked to cancel it), and drops it once the final object is stored.
  Error claim_background(const std::string& id);
  Error renew_background(const std::string& id, bool* cancel_requested);
  void release_background(const std::string& id);
  // Whether another replica runs the background response `id` (its lease is fresh).
  Error runs_elsewhere(const std::string& id, bool* elsewhere);
  // Asks the replica that runs `id` to cancel it.
  Error request_cancel(const std::string& id);

  // Replaces the stored object of response `id`, keeping its conversation (a background response
  // that ended without an answer).
  Error replace_object(const std::string& id, const std::string& object_json);

 private:
  // The stored response `id` and its conversation (a not_found error on `param` when there is
  // none; an INTERNAL error when the conversation is damaged).
  Error load(const std::string& id, const char* param, std::string* object_json,
             Conversation* conversation, size_t* output_items);

  ResponseStore& store_;
  const std::string replica_;  // this process, as owner of leases
};

}  // namespace allm
