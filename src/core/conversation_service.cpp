#include "core/conversation_service.h"

#include "core/response_store.h"
#include "nlohmann/json.hpp"

namespace allm {

namespace {

using json = nlohmann::ordered_json;

Error not_found(const std::string& quoted_id, const char* param) {
  return request_error("no stored response with id '" + quoted_id + "'", param, "not_found");
}

}  // namespace

std::vector<ChatMessage> chat_messages(const std::optional<std::string>& instructions,
                                       const Conversation& conversation) {
  std::vector<ChatMessage> messages;
  if (instructions) messages.push_back({"system", *instructions, ""});
  for (const ConversationItem& item : conversation) {
    messages.push_back({item.role, item.content, ""});
  }
  return messages;
}

std::string conversation_to_json(const Conversation& conversation) {
  json out = json::array();
  for (const ConversationItem& item : conversation) {
    out.push_back({{"role", item.role}, {"content", item.content}});
  }
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool conversation_from_json(const std::string& text, Conversation* conversation) {
  try {
    for (const json& m : json::parse(text)) {
      conversation->push_back({ConversationItem::Type::MESSAGE, m.at("role").get<std::string>(),
                               m.at("content").get<std::string>()});
    }
  } catch (const json::exception&) {
    return false;
  }
  return true;
}

Error ConversationService::history(const std::optional<std::string>& previous_response_id,
                                   Conversation* conversation) {
  conversation->clear();
  if (!previous_response_id) return {};
  std::optional<StoredResponse> stored;
  if (Error e = store_.get(*previous_response_id, &stored)) return e;
  if (!stored) return not_found(quote_excerpt(*previous_response_id), "previous_response_id");
  if (!conversation_from_json(stored->conversation_json, conversation)) {
    return make_error(ErrorCode::INTERNAL, "the stored conversation of response '" +
                                               quote_excerpt(*previous_response_id) +
                                               "' is damaged");
  }
  return {};
}

void ConversationService::append_input(Conversation* conversation, Conversation input) {
  conversation->insert(conversation->end(), std::make_move_iterator(input.begin()),
                       std::make_move_iterator(input.end()));
}

Error ConversationService::save(const FinishedResponse& response) {
  Conversation conversation = response.conversation;
  conversation.insert(conversation.end(), response.output.begin(), response.output.end());
  return store_.put({response.id, response.object_json, conversation_to_json(conversation)});
}

Error ConversationService::find(const std::string& id, std::string* object_json) {
  std::optional<StoredResponse> stored;
  if (Error e = store_.get(id, &stored)) return e;
  if (!stored) return not_found(id, "response_id");
  *object_json = std::move(stored->response_json);
  return {};
}

Error ConversationService::remove(const std::string& id) {
  bool removed = false;
  if (Error e = store_.remove(id, &removed)) return e;
  if (!removed) return not_found(id, "response_id");
  return {};
}

}  // namespace allm
