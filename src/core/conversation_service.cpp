#include "core/conversation_service.h"

#include <algorithm>

#include "base/log.h"
#include "base/random_id.h"
#include "core/response_store.h"
#include "nlohmann/json.hpp"

namespace allm {

namespace {

using json = nlohmann::ordered_json;

Error not_found(const std::string& quoted_id, const char* param) {
  return request_error("no stored response with id '" + quoted_id + "'", param, "not_found");
}

}  // namespace

bool in_progress(const std::string& object_json) {
  const json object = json::parse(object_json, nullptr, false);
  if (!object.is_object()) return false;
  const std::string status = object.value("status", std::string());
  return status == "queued" || status == "in_progress";
}

const ConversationItem* find_function_call(const Conversation& conversation,
                                           const std::string& call_id) {
  for (const ConversationItem& item : conversation) {
    if (item.type == ConversationItem::Type::FUNCTION_CALL && item.call_id == call_id) return &item;
  }
  return nullptr;
}

std::vector<ChatMessage> chat_messages(const std::optional<std::string>& instructions,
                                       const Conversation& conversation) {
  std::vector<ChatMessage> messages;
  if (instructions) messages.push_back({"system", *instructions, "", {}, "", ""});
  for (const ConversationItem& item : conversation) {
    if (item.type == ConversationItem::Type::MESSAGE) {
      messages.push_back({item.role, item.content, "", {}, "", ""});
    } else if (item.type == ConversationItem::Type::FUNCTION_CALL) {
      if (messages.empty() || messages.back().role != "assistant") {
        messages.push_back({"assistant", "", "", {}, "", ""});
      }
      messages.back().tool_calls.push_back({item.call_id, item.name, item.arguments});
    } else {
      const ConversationItem* call = find_function_call(conversation, item.call_id);
      messages.push_back({"tool", item.content, "", {}, item.call_id, call ? call->name : ""});
    }
  }
  return messages;
}

namespace {

const char* item_type_name(ConversationItem::Type type) {
  return type == ConversationItem::Type::FUNCTION_CALL ? "function_call" : "function_call_output";
}

}  // namespace

std::string conversation_to_json(const Conversation& conversation, size_t output_items) {
  json out = json::array();
  const size_t first_output = conversation.size() - std::min(output_items, conversation.size());
  for (size_t i = 0; i < conversation.size(); ++i) {
    const ConversationItem& item = conversation[i];
    json stored = json::object();
    if (!item.id.empty()) stored["id"] = item.id;
    if (item.type != ConversationItem::Type::MESSAGE) {
      stored["type"] = item_type_name(item.type);
      stored["call_id"] = item.call_id;
    }
    if (item.type == ConversationItem::Type::FUNCTION_CALL) {
      stored["name"] = item.name;
      stored["arguments"] = item.arguments;
    }
    stored["role"] = item.role;
    stored["content"] = item.content;
    if (i >= first_output) stored["output"] = true;
    out.push_back(std::move(stored));
  }
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

bool conversation_from_json(const std::string& text, const std::string& response_id,
                            Conversation* conversation, size_t* output_items) {
  size_t outputs = 0;
  bool named = false;
  try {
    const json items = json::parse(text);
    if (!items.is_array()) return false;
    for (const json& m : items) {
      ConversationItem item{ConversationItem::Type::MESSAGE, m.at("role").get<std::string>(),
                            m.at("content").get<std::string>(), m.value("id", std::string())};
      const std::string type = m.value("type", std::string("message"));
      if (type != "message") {
        item.type = type == "function_call" ? ConversationItem::Type::FUNCTION_CALL
                                            : ConversationItem::Type::FUNCTION_CALL_OUTPUT;
        item.call_id = m.at("call_id").get<std::string>();
        item.name = m.value("name", std::string());
        item.arguments = m.value("arguments", std::string());
      }
      named = named || !item.id.empty();
      if (item.id.empty()) {
        item.id = "msg_" + response_id + "_" + std::to_string(conversation->size());
      }
      if (m.value("output", false)) ++outputs;
      conversation->push_back(std::move(item));
    }
  } catch (const json::exception&) {
    return false;
  }
  // A record from before items had ids: its last item is what the response answered.
  if (!named && outputs == 0 && !conversation->empty()) outputs = 1;
  if (output_items) *output_items = outputs;
  return true;
}

Error ConversationService::load(const std::string& id, const char* param, std::string* object_json,
                                Conversation* conversation, size_t* output_items) {
  std::optional<StoredResponse> stored;
  if (Error e = store_.get(id, &stored)) return e;
  if (!stored) return not_found(quote_excerpt(id), param);
  if (!conversation_from_json(stored->conversation_json, id, conversation, output_items)) {
    return make_error(ErrorCode::INTERNAL,
                      "the stored conversation of response '" + quote_excerpt(id) + "' is damaged");
  }
  *object_json = std::move(stored->response_json);
  return {};
}

Error ConversationService::history(const std::optional<std::string>& previous_response_id,
                                   Conversation* conversation) {
  conversation->clear();
  if (!previous_response_id) return {};
  std::string object;
  if (Error e =
          load(*previous_response_id, "previous_response_id", &object, conversation, nullptr)) {
    return e;
  }
  if (in_progress(object)) {
    conversation->clear();
    return request_error("the response '" + quote_excerpt(*previous_response_id) +
                             "' is still in progress; continue it once it has completed",
                         "previous_response_id");
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
  return store_.put({response.id, response.object_json,
                     conversation_to_json(conversation, response.output.size())});
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

Error ConversationService::input_items(const std::string& id, const ItemQuery& query,
                                       ItemPage* page) {
  std::string object;
  Conversation conversation;
  size_t output_items = 0;
  if (Error e = load(id, "response_id", &object, &conversation, &output_items)) return e;
  conversation.resize(conversation.size() - std::min(output_items, conversation.size()));
  if (!query.ascending) std::reverse(conversation.begin(), conversation.end());
  auto first = conversation.begin();
  if (query.after) {
    first = std::find_if(conversation.begin(), conversation.end(),
                         [&](const ConversationItem& item) { return item.id == *query.after; });
    if (first == conversation.end()) {
      return request_error("response '" + quote_excerpt(id) + "' has no input item '" +
                               quote_excerpt(*query.after) + "'",
                           "after");
    }
    ++first;
  }
  const size_t left = static_cast<size_t>(conversation.end() - first);
  const auto last = first + static_cast<std::ptrdiff_t>(std::min(query.limit, left));
  page->items.assign(std::make_move_iterator(first), std::make_move_iterator(last));
  page->has_more = last != conversation.end();
  return {};
}

bool ConversationService::store_available() {
  return store_.available();
}

Error ConversationService::check_storable() {
  if (store_.available()) return {};
  return store_unavailable(
      "its database cannot be reached; send 'store': false to answer "
      "without storing, or retry later");
}

ConversationService::ConversationService(ResponseStore& store)
    : store_(store), replica_(random_id("replica_")) {}

Error ConversationService::claim_background(const std::string& id) {
  bool cancel_requested = false;
  return store_.hold_lease(id, replica_, &cancel_requested);
}

Error ConversationService::renew_background(const std::string& id, bool* cancel_requested) {
  return store_.hold_lease(id, replica_, cancel_requested);
}

void ConversationService::release_background(const std::string& id) {
  // A lease left behind expires; readers then see the stored object as it is.
  if (Error e = store_.drop_lease(id)) {
    ALLM_LOG_WARN("background response %s: %s", id.c_str(), e.message.c_str());
  }
}

Error ConversationService::runs_elsewhere(const std::string& id, bool* elsewhere) {
  *elsewhere = false;
  std::optional<BackgroundLease> lease;
  if (Error e = store_.lease(id, &lease)) return e;
  *elsewhere = lease && lease->owner != replica_ && lease->age_seconds < kLeaseExpirySeconds;
  return {};
}

Error ConversationService::request_cancel(const std::string& id) {
  return store_.request_cancel(id);
}

Error ConversationService::replace_object(const std::string& id, const std::string& object_json) {
  std::optional<StoredResponse> stored;
  if (Error e = store_.get(id, &stored)) return e;
  if (!stored) return not_found(quote_excerpt(id), "response_id");
  stored->response_json = object_json;
  return store_.put(*stored);
}

}  // namespace allm
