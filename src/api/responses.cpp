// POST /v1/responses (the recommended text API), GET and DELETE /v1/responses/{id}.
#include <algorithm>
#include <chrono>
#include <thread>

#include "api/access_log.h"
#include "api/http_util.h"
#include "api/logprobs.h"
#include "api/model_advice.h"
#include "api/output_format.h"
#include "api/request_fields.h"
#include "api/request_parsing.h"
#include "api/routes.h"
#include "api/tools.h"
#include "base/log.h"
#include "base/random_id.h"
#include "core/background_jobs.h"
#include "core/conversation_service.h"
#include "core/text_manager.h"

namespace allm {

namespace {

// On a response that could not be stored: why (its object says `store: false`).
constexpr const char* kStoreErrorHeader = "X-Allm-Store-Error";

const char* const kRoles[] = {"system", "developer", "user", "assistant"};

bool known_role(const std::string& role) {
  for (const char* r : kRoles) {
    if (role == r) return true;
  }
  return false;
}

// A message's content: a string, or an array of input_text / output_text parts.
Error read_content(const json& content, const std::string& param, std::string* text) {
  if (content.is_string()) {
    *text = content.get<std::string>();
    return {};
  }
  if (!content.is_array()) return request_error("content must be a string or an array", param);
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string part_param = param + "[" + std::to_string(i) + "]";
    const std::string type = text_member(part, "type", "");
    if (type != "input_text" && type != "output_text") {
      return request_error(
          "content part type '" + quote_excerpt(type) + "' is not supported; use input_text parts",
          part_param + ".type");
    }
    if (!part.contains("text") || !part["text"].is_string()) {
      return request_error("a text part needs a string 'text'", part_param + ".text");
    }
    *text += part["text"].get<std::string>();
  }
  return {};
}

// A function_call input item: a call the model made earlier, sent back by a stateless client.
Error read_function_call(const json& item, const std::string& param, ConversationItem* call) {
  for (const char* key : {"call_id", "name", "arguments"}) {
    if (!item.contains(key) || !item[key].is_string()) {
      return request_error("a function_call item needs a string '" + std::string(key) + "'",
                           param + "." + key);
    }
  }
  call->type = ConversationItem::Type::FUNCTION_CALL;
  call->call_id = item["call_id"].get<std::string>();
  call->name = item["name"].get<std::string>();
  call->arguments = item["arguments"].get<std::string>();
  call->id = text_member(item, "id", "");
  if (call->id.empty()) call->id = random_id("fc_");
  return {};
}

// A function_call_output input item: what the client's run of the call `call_id` gave, which
// must be a call of the conversation (`history`, or this input before it).
Error read_function_output(const json& item, const std::string& param, const Conversation& history,
                           const Conversation& input, ConversationItem* output) {
  if (!item.contains("call_id") || !item["call_id"].is_string()) {
    return request_error("a function_call_output item needs a string 'call_id'",
                         param + ".call_id");
  }
  output->type = ConversationItem::Type::FUNCTION_CALL_OUTPUT;
  output->call_id = item["call_id"].get<std::string>();
  if (!find_function_call(history, output->call_id) &&
      !find_function_call(input, output->call_id)) {
    return request_error("call_id '" + quote_excerpt(output->call_id) +
                             "' matches no function call of the conversation",
                         param + ".call_id");
  }
  if (!item.contains("output")) return request_error("missing output", param + ".output");
  if (Error e = read_content(item["output"], param + ".output", &output->content)) return e;
  output->id = text_member(item, "id", "");
  if (output->id.empty()) output->id = random_id("fco_");
  return {};
}

Error read_message_item(const json& item, const std::string& param, ConversationItem* message) {
  const std::string role =
      item.contains("role") && item["role"].is_string() ? item["role"].get<std::string>() : "";
  if (!known_role(role)) {
    return request_error("role must be one of system, developer, user, assistant", param + ".role");
  }
  if (!item.contains("content")) return request_error("missing content", param + ".content");
  message->id = random_id("msg_");
  message->role = role == "developer" ? "system" : role;
  return read_content(item["content"], param + ".content", &message->content);
}

Error read_input(const json& input, const Conversation& history, Conversation* items) {
  if (input.is_string()) {
    items->push_back(
        {ConversationItem::Type::MESSAGE, "user", input.get<std::string>(), random_id("msg_")});
    return {};
  }
  if (!input.is_array() || input.empty()) {
    return request_error("'input' must be a string or a non-empty array of message items", "input");
  }
  for (size_t i = 0; i < input.size(); ++i) {
    const json& item = input[i];
    const std::string param = "input[" + std::to_string(i) + "]";
    if (!item.is_object()) return request_error(param + " must be an object", param);
    const std::string type = text_member(item, "type", "message");
    ConversationItem next;
    Error error;
    if (type == "message") {
      error = read_message_item(item, param, &next);
    } else if (type == "function_call") {
      error = read_function_call(item, param, &next);
    } else if (type == "function_call_output") {
      error = read_function_output(item, param, history, *items, &next);
    } else {
      error = request_error("input item type '" + quote_excerpt(type) + "' is not supported",
                            param + ".type");
    }
    if (error) return error;
    items->push_back(std::move(next));
  }
  return {};
}

// OpenAI's limits on `metadata`.
constexpr size_t kMaxMetadataPairs = 16;
constexpr size_t kMaxMetadataKeyChars = 64;
constexpr size_t kMaxMetadataValueChars = 512;

// Characters (code points) of valid UTF-8 text, as the JSON parser leaves it.
size_t utf8_chars(const std::string& text) {
  return static_cast<size_t>(
      std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// `metadata`: an object of at most 16 pairs, string keys up to 64 characters and string values
// up to 512. Absent or null: an empty object.
Error read_metadata(const json& body, json* metadata) {
  *metadata = json::object();
  if (!body.contains("metadata") || body["metadata"].is_null()) return {};
  const json& value = body["metadata"];
  if (!value.is_object()) return request_error("'metadata' must be an object", "metadata");
  if (value.size() > kMaxMetadataPairs) {
    return request_error(
        "'metadata' may hold at most 16 key-value pairs, got " + std::to_string(value.size()),
        "metadata");
  }
  for (const auto& [key, item] : value.items()) {
    if (utf8_chars(key) > kMaxMetadataKeyChars) {
      return request_error("'metadata' keys may be at most 64 characters long, got one of " +
                               std::to_string(utf8_chars(key)),
                           "metadata");
    }
    if (!item.is_string()) return request_error("'metadata' values must be strings", "metadata");
    if (utf8_chars(item.get_ref<const std::string&>()) > kMaxMetadataValueChars) {
      return request_error("'metadata' values may be at most 512 characters long", "metadata");
    }
  }
  *metadata = value;
  return {};
}

struct ResponsesCall {
  TextRequest request;
  Conversation conversation;  // stored history + this input, no instructions
  json instructions = nullptr;
  json max_output_tokens = nullptr;
  json previous_response_id = nullptr;
  json metadata = json::object();
  OutputFormat format;  // text.format
  RequestTools tools;
  json reasoning_effort = nullptr;
  double temperature = 1.0;
  double top_p = 1.0;
  bool stream = false;
  bool store = true;
  bool background = false;
  std::string truncation = "disabled";
  bool logprobs = false;  // include: ["message.output_text.logprobs"]
  int top_logprobs = 0;
};

// What include asks for: only the output text's log probabilities are offered (the field table
// refuses the rest).
bool includes_logprobs(const json& body) {
  if (!body.contains("include") || !body["include"].is_array()) return false;
  const json& include = body["include"];
  return std::find(include.begin(), include.end(), "message.output_text.logprobs") != include.end();
}

Error read_call(const json& body, ConversationService& conversations, ResponsesCall* call) {
  if (Error e = check_responses_fields(body)) return e;
  ParamReader params(body);
  auto model = params.string("model", true);
  auto instructions = params.string("instructions");
  auto max_output = params.integer("max_output_tokens", 1, 1 << 24);
  auto temperature = params.number("temperature", 0.0, 2.0);
  auto top_p = params.number("top_p", 0.0, 1.0);
  auto stream = params.boolean("stream");
  auto store_flag = params.boolean("store");
  auto previous = params.string("previous_response_id");
  auto background = params.boolean("background");
  auto truncation = params.string("truncation");
  auto top_logprobs = params.integer("top_logprobs", 0, 20);
  if (!params.has("input")) params.fail("missing required parameter 'input'", "input");
  if (params.error) return params.error;
  call->logprobs = includes_logprobs(body);
  if (top_logprobs.value_or(0) > 0 && !call->logprobs) {
    return request_error(
        "'top_logprobs' needs include: [\"message.output_text.logprobs\"] to be returned",
        "top_logprobs");
  }
  call->background = background.value_or(false);
  if (call->background && !store_flag.value_or(true)) {
    return request_error("background responses are stored: 'background' needs 'store': true",
                         "background");
  }
  if (call->background && stream.value_or(false)) {
    return request_error(
        "streaming a background response is not offered; poll GET /v1/responses/{id} instead",
        "stream");
  }
  call->store = store_flag.value_or(true);
  // Refused before the model runs: an answer that would not be stored is not what was asked.
  if (call->store) {
    if (Error e = conversations.check_storable()) return e;
  }

  if (Error e = read_metadata(body, &call->metadata)) return e;
  if (Error e = read_text_format(body, &call->format)) return e;
  if (Error e = read_tools(body, ToolDialect::RESPONSES, &call->tools)) return e;
  if (body.contains("reasoning") && body["reasoning"].is_object()) {
    call->reasoning_effort = body["reasoning"].value("effort", json(nullptr));
  }

  if (Error e = conversations.history(previous, &call->conversation)) return e;
  if (previous) call->previous_response_id = *previous;
  Conversation input;
  if (Error e = read_input(body["input"], call->conversation, &input)) return e;
  ConversationService::append_input(&call->conversation, std::move(input));

  TextRequest& request = call->request;
  request.model = *model;
  request.prompt_param = "input";
  request.max_tokens_param = "max_output_tokens";
  if (instructions) call->instructions = *instructions;
  request.messages = chat_messages(instructions, call->conversation);
  call->truncation = truncation.value_or("disabled");
  request.truncate = call->truncation == "auto";
  request.kept_leading = instructions ? 1 : 0;
  call->top_logprobs = static_cast<int>(top_logprobs.value_or(0));
  request.top_logprobs = call->logprobs ? call->top_logprobs : -1;
  if (max_output) {
    request.max_tokens = static_cast<int>(*max_output);
    call->max_output_tokens = *max_output;
  }
  call->temperature = temperature.value_or(1.0);
  call->top_p = top_p.value_or(1.0);
  request.sampling.temperature = static_cast<float>(call->temperature);
  request.sampling.top_p = static_cast<float>(call->top_p);
  request.grammar = call->format.grammar;
  request.chat = call->tools.options;
  request.chat.answer_schema = call->format.schema;
  if (call->reasoning_effort.is_string()) {
    request.chat.reasoning_effort = call->reasoning_effort.get<std::string>();
  }
  call->stream = stream.value_or(false);
  return {};
}

// A function_call item as the API shows it, in the output and in input_items.
json function_call_item(const std::string& item_id, const std::string& status,
                        const std::string& call_id, const std::string& name,
                        const std::string& arguments) {
  return {{"id", item_id},          {"type", "function_call"}, {"status", status},
          {"arguments", arguments}, {"call_id", call_id},      {"name", name}};
}

// The response object as it grows: the same builder serves streaming and plain requests.
class ResponseObject {
 public:
  explicit ResponseObject(const ResponsesCall& call)
      : call_(call),
        id_(random_id("resp_")),
        message_id_(random_id("msg_")),
        reasoning_id_(random_id("rs_")),
        created_at_(unix_time()) {}

  const std::string& id() const { return id_; }
  const std::string& message_id() const { return message_id_; }
  const std::string& reasoning_id() const { return reasoning_id_; }
  std::string text;
  std::string reasoning;

  // The function calls of the answer, each with its output item's id (fc_...).
  struct CallItem {
    std::string item_id;
    ToolCall call;
  };
  std::vector<CallItem> calls;

  // An event's text, reasoning, calls and logprobs (when not streamed: the event writer adds its
  // own).
  void add(const TextEvent& event) {
    text += event.delta.content;
    reasoning += event.delta.reasoning;
    for (const ToolCallDelta& piece : event.delta.tool_calls) add_call_piece(piece);
    text_logprobs(event);
  }

  // A call's piece: the first opens it, the rest carry more of its arguments.
  void add_call_piece(const ToolCallDelta& piece) {
    if (piece.index == calls.size()) {
      calls.push_back({random_id("fc_"), {piece.id, piece.name, piece.arguments}});
    } else if (piece.index < calls.size()) {
      calls[piece.index].call.arguments += piece.arguments;
    }
  }

  json call_item(size_t index, const std::string& status, bool with_arguments) const {
    const CallItem& item = calls[index];
    return function_call_item(item.item_id, status, item.call.id, item.call.name,
                              with_arguments ? item.call.arguments : "");
  }
  // Whether the output has a message: text, or nothing else to show.
  bool has_message() const { return !text.empty() || calls.empty(); }

  // The logprob entries of the event's output text, kept for the text part (none unless asked
  // for). The tokens of text held back (a possible stop string) wait for the text they give;
  // reasoning tokens have none in output_text.
  json text_logprobs(const TextEvent& event) {
    json entries = json::array();
    if (!call_.logprobs) return entries;
    pending_logprobs_.insert(pending_logprobs_.end(), event.logprobs.begin(), event.logprobs.end());
    if (!event.delta.content.empty()) {
      append_logprob_entries(pending_logprobs_, &entries);
      for (const json& entry : entries) logprobs_.push_back(entry);
    }
    if (!event.delta.content.empty() || !event.delta.reasoning.empty()) pending_logprobs_.clear();
    return entries;
  }

  // Cancelled before it ended (a background response): no output.
  void cancel() { status_ = "cancelled"; }
  bool answered() const { return status_ == "completed" || status_ == "incomplete"; }

  // The final state after generation ended.
  void finish(const TextEvent& done) {
    usage_ = done.usage;
    if (done.finish == FinishReason::ERROR || done.finish == FinishReason::CANCELLED) {
      status_ = "failed";
      error_ = done.error;
    } else if (done.finish == FinishReason::LENGTH) {
      status_ = "incomplete";
    } else {
      status_ = "completed";
    }
  }
  const std::string& status() const { return status_; }
  // The response could not be saved after all: the object says `store: false`.
  void mark_not_stored() { stored_ = false; }

  json reasoning_item(const std::string& status) const {
    return {{"id", reasoning_id_},
            {"type", "reasoning"},
            {"status", status},
            {"summary", json::array()},
            {"content", json::array({{{"type", "reasoning_text"}, {"text", reasoning}}})}};
  }
  json text_part() const {
    return {{"type", "output_text"},
            {"text", text},
            {"annotations", json::array()},
            {"logprobs", logprobs_}};
  }
  const json& logprobs() const { return logprobs_; }
  json message_item(const std::string& status, bool with_content) const {
    return {{"id", message_id_},
            {"type", "message"},
            {"status", status},
            {"role", "assistant"},
            {"content", with_content ? json::array({text_part()}) : json::array()}};
  }

  json object() const {
    const bool done = status_ != "in_progress";
    json output = json::array();
    const std::string item_status = status_ == "incomplete" ? "incomplete" : "completed";
    if (done && !reasoning.empty()) output.push_back(reasoning_item(item_status));
    if (answered() && has_message()) output.push_back(message_item(item_status, true));
    for (size_t i = 0; answered() && i < calls.size(); ++i) {
      output.push_back(call_item(i, item_status, true));
    }
    json o;
    o["id"] = id_;
    o["object"] = "response";
    o["created_at"] = created_at_;
    o["background"] = call_.background;
    o["status"] = status_;
    o["error"] = status_ == "failed"
                     ? json{{"code", error_code_name(error_.code)}, {"message", error_.message}}
                     : json(nullptr);
    o["incomplete_details"] =
        status_ == "incomplete" ? json{{"reason", "max_output_tokens"}} : json(nullptr);
    o["instructions"] = call_.instructions;
    o["max_output_tokens"] = call_.max_output_tokens;
    o["model"] = call_.request.model;
    o["output"] = output;
    o["parallel_tool_calls"] = call_.tools.options.parallel_tool_calls;
    o["previous_response_id"] = call_.previous_response_id;
    o["reasoning"] = {{"effort", call_.reasoning_effort}, {"summary", nullptr}};
    o["store"] = stored_;
    o["temperature"] = call_.temperature;
    o["text"] = {{"format", call_.format.echo}};
    o["tool_choice"] = call_.tools.echo_choice;
    o["tools"] = call_.tools.echo_tools;
    o["top_logprobs"] = call_.top_logprobs;
    o["top_p"] = call_.top_p;
    o["truncation"] = call_.truncation;
    o["usage"] = done ? usage_json() : json(nullptr);
    o["user"] = nullptr;
    o["metadata"] = call_.metadata;
    return o;
  }

 private:
  json usage_json() const {
    return {{"input_tokens", usage_.prompt_tokens},
            {"input_tokens_details", {{"cached_tokens", usage_.cached_tokens}}},
            {"output_tokens", usage_.completion_tokens},
            {"output_tokens_details", {{"reasoning_tokens", 0}}},
            {"total_tokens", usage_.prompt_tokens + usage_.completion_tokens}};
  }

  const ResponsesCall& call_;
  std::string id_, message_id_, reasoning_id_;
  int64_t created_at_;
  bool stored_ = call_.store;
  std::string status_ = "in_progress";
  Error error_;
  TextUsage usage_;
  json logprobs_ = json::array();
  std::vector<TokenLogprob> pending_logprobs_;
};

// The finished response's object, saved first (when store is on) so that it is stored before
// the client hears it is complete. When saving fails, the object the client gets says
// `store: false` and the failure is returned (plain responses carry it in a header).
json saved_object(ConversationService& conversations, const ResponsesCall& call, ResponseObject& r,
                  Error* store_error) {
  json object = r.object();
  // A background response is stored however it ends: it replaces the one in progress.
  if (!call.store || (!r.answered() && !call.background)) return object;
  Conversation output;
  if (r.answered() && r.has_message()) {
    output.push_back({ConversationItem::Type::MESSAGE, "assistant", r.text, r.message_id()});
  }
  for (size_t i = 0; r.answered() && i < r.calls.size(); ++i) {
    const ResponseObject::CallItem& item = r.calls[i];
    output.push_back({ConversationItem::Type::FUNCTION_CALL, "", "", item.item_id, item.call.id,
                      item.call.name, item.call.arguments});
  }
  *store_error =
      conversations.save({r.id(), object.dump(-1, ' ', false, json::error_handler_t::replace),
                          call.conversation, std::move(output)});
  if (*store_error) {
    ALLM_LOG_ERROR("response %s not stored (answered with store: false): %s", r.id().c_str(),
                   store_error->message.c_str());
    r.mark_not_stored();
    object = r.object();
  }
  return object;
}

// The streaming event sequence of the Responses API; items open as their first text arrives.
class ResponseEventWriter {
 public:
  ResponseEventWriter(ResponseObject& response, httplib::DataSink& sink)
      : r_(response), sink_(sink) {}

  bool start() {
    const json object = r_.object();
    return emit("response.created", {{"response", object}}) &&
           emit("response.in_progress", {{"response", object}});
  }

  bool delta(const TextEvent& event) {
    const ChatDelta& delta = event.delta;
    json logprobs = r_.text_logprobs(event);
    if (!delta.reasoning.empty()) {
      if (!reasoning_open_ && !open_reasoning()) return false;
      r_.reasoning += delta.reasoning;
      if (!emit("response.reasoning_text.delta", {{"item_id", r_.reasoning_id()},
                                                  {"output_index", reasoning_index_},
                                                  {"content_index", 0},
                                                  {"delta", delta.reasoning}})) {
        return false;
      }
    }
    if (!delta.content.empty()) {
      if (!message_open_ && !open_message()) return false;
      r_.text += delta.content;
      if (!emit("response.output_text.delta", {{"item_id", r_.message_id()},
                                               {"output_index", message_index_},
                                               {"content_index", 0},
                                               {"delta", delta.content},
                                               {"logprobs", std::move(logprobs)}})) {
        return false;
      }
    }
    for (const ToolCallDelta& piece : delta.tool_calls) {
      if (!call_piece(piece)) return false;
    }
    return true;
  }

  bool finish(const json& object) {
    const std::string status = r_.status();
    if (status != "failed") {
      const std::string item_status = status == "incomplete" ? "incomplete" : "completed";
      if (open_call_ && !close_call(item_status)) return false;
      if (!message_open_ && !message_closed_ && r_.has_message() && !open_message()) return false;
      if (message_open_ && !close_message(item_status)) return false;
    }
    const std::string type = status == "completed"    ? "response.completed"
                             : status == "incomplete" ? "response.incomplete"
                                                      : "response.failed";
    return emit(type, {{"response", object}});
  }

 private:
  bool open_reasoning() {
    reasoning_open_ = true;
    reasoning_index_ = next_index_++;
    return emit("response.output_item.added",
                {{"output_index", reasoning_index_}, {"item", r_.reasoning_item("in_progress")}});
  }
  bool close_reasoning() {
    reasoning_open_ = false;
    return emit("response.reasoning_text.done", {{"item_id", r_.reasoning_id()},
                                                 {"output_index", reasoning_index_},
                                                 {"content_index", 0},
                                                 {"text", r_.reasoning}}) &&
           emit("response.output_item.done",
                {{"output_index", reasoning_index_}, {"item", r_.reasoning_item("completed")}});
  }
  bool close_message(const std::string& item_status) {
    message_open_ = false;
    message_closed_ = true;
    return emit("response.output_text.done", {{"item_id", r_.message_id()},
                                              {"output_index", message_index_},
                                              {"content_index", 0},
                                              {"text", r_.text},
                                              {"logprobs", r_.logprobs()}}) &&
           emit("response.content_part.done", {{"item_id", r_.message_id()},
                                               {"output_index", message_index_},
                                               {"content_index", 0},
                                               {"part", r_.text_part()}}) &&
           emit("response.output_item.done",
                {{"output_index", message_index_}, {"item", r_.message_item(item_status, true)}});
  }
  // A call's piece: the first closes what is open and opens the call's item; each piece's
  // arguments are a delta.
  bool call_piece(const ToolCallDelta& piece) {
    const size_t known = r_.calls.size();
    r_.add_call_piece(piece);
    if (piece.index >= r_.calls.size()) return true;
    if (piece.index == known) {
      if (open_call_ && !close_call("completed")) return false;
      if (reasoning_open_ && !close_reasoning()) return false;
      if (message_open_ && !close_message("completed")) return false;
      open_call_ = true;
      call_output_index_ = next_index_++;
      if (!emit("response.output_item.added",
                {{"output_index", call_output_index_},
                 {"item", r_.call_item(piece.index, "in_progress", false)}})) {
        return false;
      }
    }
    if (piece.arguments.empty()) return true;
    return emit("response.function_call_arguments.delta",
                {{"item_id", r_.calls[piece.index].item_id},
                 {"output_index", call_output_index_},
                 {"delta", piece.arguments}});
  }
  bool close_call(const std::string& item_status) {
    open_call_ = false;
    const size_t index = r_.calls.size() - 1;
    const ResponseObject::CallItem& item = r_.calls[index];
    return emit("response.function_call_arguments.done", {{"item_id", item.item_id},
                                                          {"output_index", call_output_index_},
                                                          {"name", item.call.name},
                                                          {"arguments", item.call.arguments}}) &&
           emit("response.output_item.done", {{"output_index", call_output_index_},
                                              {"item", r_.call_item(index, item_status, true)}});
  }
  bool open_message() {
    if (open_call_ && !close_call("completed")) return false;
    if (reasoning_open_ && !close_reasoning()) return false;
    message_open_ = true;
    message_index_ = next_index_++;
    const json empty_part = {{"type", "output_text"},
                             {"text", ""},
                             {"annotations", json::array()},
                             {"logprobs", json::array()}};
    return emit("response.output_item.added", {{"output_index", message_index_},
                                               {"item", r_.message_item("in_progress", false)}}) &&
           emit("response.content_part.added", {{"item_id", r_.message_id()},
                                                {"output_index", message_index_},
                                                {"content_index", 0},
                                                {"part", empty_part}});
  }
  bool emit(const std::string& type, json data) {
    json event = {{"type", type}, {"sequence_number", sequence_++}};
    event.update(data);
    const std::string text = sse_event(type, event);
    return sink_.write(text.data(), text.size());
  }

  ResponseObject& r_;
  httplib::DataSink& sink_;
  int sequence_ = 0;
  int next_index_ = 0;
  int reasoning_index_ = 0;
  int message_index_ = 0;
  int call_output_index_ = 0;
  bool reasoning_open_ = false;
  bool message_open_ = false;
  bool message_closed_ = false;
  bool open_call_ = false;  // the last call's item is open
};

void respond_streaming(ApiContext& ctx, const httplib::Request& req, httplib::Response& res,
                       std::shared_ptr<ResponsesCall> call, std::shared_ptr<TextStream> stream) {
  auto client_gone = req.is_connection_closed;
  res.set_chunked_content_provider(
      "text/event-stream", [&ctx, call, stream, client_gone](size_t, httplib::DataSink& sink) {
        ResponseObject response(*call);
        ResponseEventWriter writer(response, sink);
        if (!writer.start()) {
          stream->cancel();
          return false;
        }
        const bool finished = drain_text_stream(*stream, client_gone, [&](TextEvent& event) {
          if (!writer.delta(event)) return false;
          if (!event.done) return true;
          response.finish(event);
          Error not_stored;
          return writer.finish(saved_object(ctx.conversations, *call, response, &not_stored));
        });
        if (finished) sink.done();
        return finished;
      });
}

void respond_plain(ApiContext& ctx, const httplib::Request& req, httplib::Response& res,
                   const ResponsesCall& call, TextStream& stream) {
  ResponseObject response(call);
  TextEvent last;
  const bool finished = drain_text_stream(stream, req.is_connection_closed, [&](TextEvent& event) {
    response.add(event);
    if (event.done) last = std::move(event);
    return true;
  });
  if (!finished) return;  // the client is gone
  response.finish(last);
  Error not_stored;
  const json object = saved_object(ctx.conversations, call, response, &not_stored);
  if (response.status() == "failed") {
    send_error(res, last.error);
    return;
  }
  if (not_stored) res.set_header(kStoreErrorHeader, not_stored.message);
  send_json(res, object);
}

// A background response's generation, on the job's thread: it is stored when it ends, however it
// ends (cancelled: without output). Meanwhile its lease is renewed every second, which also
// tells whether another replica asked to cancel it.
void run_background(ConversationService& conversations, const ResponsesCall& call,
                    TextStream& stream, ResponseObject& response,
                    const std::atomic<bool>& cancelled) {
  using Clock = std::chrono::steady_clock;
  const auto renewal = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(kLeaseRenewalSeconds));
  auto next_renewal = Clock::now() + renewal;
  bool cancel_requested = false;
  TextEvent event;
  for (;;) {
    if (cancelled || cancel_requested) stream.cancel();
    if (Clock::now() >= next_renewal) {
      // A failed renewal leaves the job running: the lease expires only if it goes on failing.
      conversations.renew_background(response.id(), &cancel_requested);
      next_renewal = Clock::now() + renewal;
    }
    if (!stream.next(&event, std::chrono::milliseconds(50))) continue;
    response.add(event);
    if (event.done) break;
  }
  if (cancelled || cancel_requested) {
    response.cancel();
  } else {
    response.finish(event);
  }
  Error not_stored;
  saved_object(conversations, call, response, &not_stored);
  conversations.release_background(response.id());
}

// background: true answers at once with the response in progress, stored before the answer so
// that it can be polled; the generation goes on in a background job.
void respond_background(ApiContext& ctx, httplib::Response& res,
                        std::shared_ptr<ResponsesCall> call, std::shared_ptr<TextStream> stream) {
  auto response = std::make_shared<ResponseObject>(*call);
  const json object = response->object();
  Error error = ctx.background.start(
      response->id(),
      [&] {
        if (Error e = ctx.conversations.claim_background(response->id())) return e;
        return ctx.conversations.save({response->id(),
                                       object.dump(-1, ' ', false, json::error_handler_t::replace),
                                       call->conversation,
                                       {}});
      },
      // The job may outlive the HTTP server and its context (at shutdown), not the service.
      [&conversations = ctx.conversations, call, stream,
       response](const std::atomic<bool>& cancelled) {
        run_background(conversations, *call, *stream, *response, cancelled);
      });
  if (error) {
    stream->cancel();
    return send_error(res, error);
  }
  send_json(res, object);
}

void create_response(ApiContext& ctx, const httplib::Request& req, httplib::Response& res) {
  json body;
  Error error;
  if (!parse_json_body(req, &body, &error)) return send_error(res, error);
  auto call = std::make_shared<ResponsesCall>();
  if ((error = read_call(body, ctx.conversations, call.get()))) return send_error(res, error);
  call->request.received = current_access().started;
  std::shared_ptr<TextStream> stream = ctx.text.start(call->request, &error);
  if (!stream) {
    return send_error(
        res, with_endpoint_advice(error, ctx.registry, call->request.model, Modality::TEXT));
  }
  if (call->background) return respond_background(ctx, res, call, stream);
  if (call->stream) return respond_streaming(ctx, req, res, call, stream);
  respond_plain(ctx, req, res, *call, *stream);
}

// The stored object `id`. A background response stored in progress that no replica runs (not
// this one, and no fresh lease of another on a shared store) was left so by a server that
// stopped: it is marked failed, in the store too, before it is answered.
Error stored_object(ApiContext& ctx, const std::string& id, std::string* object_json) {
  if (Error e = ctx.conversations.find(id, object_json)) return e;
  if (!in_progress(*object_json) || ctx.background.running(id)) return {};
  bool elsewhere = false;
  if (Error e = ctx.conversations.runs_elsewhere(id, &elsewhere)) return e;
  if (elsewhere) return {};
  // Its job stores it before it stops running: look again.
  if (Error e = ctx.conversations.find(id, object_json)) return e;
  if (!in_progress(*object_json)) return {};
  json object = json::parse(*object_json);
  object["status"] = "failed";
  object["error"] = {{"code", error_code_name(ErrorCode::CANCELLED)},
                     {"message", "the server stopped before this background response ended"}};
  *object_json = object.dump(-1, ' ', false, json::error_handler_t::replace);
  if (Error e = ctx.conversations.replace_object(id, *object_json)) return e;
  ctx.conversations.release_background(id);
  return {};
}

// How long a cancel waits for another replica to store the cancelled response.
constexpr auto kRemoteCancelWait = std::chrono::seconds(10);

// Cancels a background response that another replica runs: asks it through the store, then
// waits (bounded) until the response is stored as ended. `*object_json`: the last one read.
Error cancel_elsewhere(ApiContext& ctx, const std::string& id, std::string* object_json) {
  if (Error e = ctx.conversations.request_cancel(id)) return e;
  const auto deadline = std::chrono::steady_clock::now() + kRemoteCancelWait;
  while (in_progress(*object_json) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (Error e = stored_object(ctx, id, object_json)) return e;
  }
  return {};
}

// POST /v1/responses/{id}/cancel: a background response in progress ends as cancelled; one that
// already ended is answered as it is.
void cancel_response(ApiContext& ctx, const std::string& id, httplib::Response& res) {
  std::string object_json;
  if (Error e = stored_object(ctx, id, &object_json)) return send_error(res, e);
  if (!json::parse(object_json).value("background", false)) {
    return send_error(
        res, request_error("only background responses can be cancelled; '" + quote_excerpt(id) +
                               "' was not created with "
                               "background: true",
                           "response_id"));
  }
  if (ctx.background.cancel(id)) {
    if (Error e = ctx.conversations.find(id, &object_json)) return send_error(res, e);
  } else if (in_progress(object_json)) {
    if (Error e = cancel_elsewhere(ctx, id, &object_json)) return send_error(res, e);
  }
  res.set_content(object_json, "application/json");
}

// The query of GET /v1/responses/{id}/input_items: limit (1-100), order (asc, desc), after.
Error read_item_query(const httplib::Request& req, ItemQuery* query) {
  for (const auto& [name, value] : req.params) {
    if (name == "limit") {
      char* end = nullptr;
      const long limit = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || limit < 1 || limit > 100) {
        return request_error("'limit' must be an integer from 1 to 100", "limit");
      }
      query->limit = static_cast<size_t>(limit);
    } else if (name == "order") {
      if (value != "asc" && value != "desc") {
        return request_error("'order' must be 'asc' or 'desc'", "order");
      }
      query->ascending = value == "asc";
    } else if (name == "after") {
      query->after = value;
    } else if (name == "include" || name == "include[]") {
      return request_error("'include' value '" + quote_excerpt(value) +
                               "' is not offered: input items carry no additional data",
                           "include");
    } else {
      return request_error("unknown parameter '" + quote_excerpt(name) + "'", name,
                           "unknown_parameter");
    }
  }
  return {};
}

// An input item as OpenAI lists it: a message with input_text parts (output_text for the
// assistant's), a function call or a call's output.
json input_item_json(const ConversationItem& item) {
  if (item.type == ConversationItem::Type::FUNCTION_CALL) {
    return function_call_item(item.id, "completed", item.call_id, item.name, item.arguments);
  }
  if (item.type == ConversationItem::Type::FUNCTION_CALL_OUTPUT) {
    return {{"id", item.id},
            {"type", "function_call_output"},
            {"status", "completed"},
            {"call_id", item.call_id},
            {"output", item.content}};
  }
  const bool assistant = item.role == "assistant";
  json part = {{"type", assistant ? "output_text" : "input_text"}, {"text", item.content}};
  if (assistant) part["annotations"] = json::array();
  return {{"id", item.id},
          {"type", "message"},
          {"role", item.role},
          {"status", "completed"},
          {"content", json::array({part})}};
}

void list_input_items(ApiContext& ctx, const httplib::Request& req, httplib::Response& res) {
  ItemQuery query;
  if (Error e = read_item_query(req, &query)) return send_error(res, e);
  ItemPage page;
  if (Error e = ctx.conversations.input_items(req.matches[1], query, &page)) {
    return send_error(res, e);
  }
  json data = json::array();
  for (const ConversationItem& item : page.items) data.push_back(input_item_json(item));
  send_json(res, {{"object", "list"},
                  {"data", data},
                  {"first_id", page.items.empty() ? json(nullptr) : json(page.items.front().id)},
                  {"last_id", page.items.empty() ? json(nullptr) : json(page.items.back().id)},
                  {"has_more", page.has_more}});
}

}  // namespace

Error check_responses_request(const json& body, ConversationService& conversations) {
  ResponsesCall call;
  return read_call(body, conversations, &call);
}

void register_responses_routes(httplib::Server& server, ApiContext& ctx) {
  server.Post("/v1/responses", [&ctx](const httplib::Request& req, httplib::Response& res) {
    create_response(ctx, req, res);
  });
  server.Get("/v1/responses/([^/]+)", [&ctx](const httplib::Request& req, httplib::Response& res) {
    std::string object;
    if (Error e = stored_object(ctx, req.matches[1], &object)) return send_error(res, e);
    res.set_content(object, "application/json");
  });
  server.Get("/v1/responses/([^/]+)/input_items",
             [&ctx](const httplib::Request& req, httplib::Response& res) {
               list_input_items(ctx, req, res);
             });
  server.Post("/v1/responses/([^/]+)/cancel",
              [&ctx](const httplib::Request& req, httplib::Response& res) {
                cancel_response(ctx, req.matches[1], res);
              });
  server.Delete("/v1/responses/([^/]+)",
                [&ctx](const httplib::Request& req, httplib::Response& res) {
                  const std::string id = req.matches[1];
                  if (Error e = ctx.conversations.remove(id)) return send_error(res, e);
                  send_json(res, {{"id", id}, {"object", "response.deleted"}, {"deleted", true}});
                });
}

}  // namespace allm
