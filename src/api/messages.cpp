// POST /v1/messages and /v1/messages/count_tokens: Anthropic's Messages API, translated onto the
// chat requests the other text endpoints make (chat template, tools, reasoning).
#include <functional>

#include "api/access_log.h"
#include "api/http_util.h"
#include "api/message_events.h"
#include "api/model_advice.h"
#include "api/output_format.h"
#include "api/request_fields.h"
#include "api/request_parsing.h"
#include "api/routes.h"
#include "api/tools.h"
#include "core/text_manager.h"

namespace allm {

namespace {

// Stop sequences one request may send (each is checked after every token).
constexpr size_t kMaxStopSequences = 64;
// Anthropic's bounds: a thinking budget of at least 1024 tokens, below max_tokens.
constexpr int64_t kMinThinkingBudget = 1024;
constexpr size_t kMaxUserIdBytes = 256;

struct MessagesCall {
  TextRequest request;
  bool stream = false;
  MessageHeader header;
};

// What a content block type not offered is answered with.
Error refuse_block(const std::string& type, const std::string& param) {
  if (type == "image" || type == "document" || type == "search_result" ||
      type == "redacted_thinking" || type == "server_tool_use" ||
      type == "web_search_tool_result" || type == "container_upload") {
    return unsupported_error("'" + type + "' content blocks are not offered; send text",
                             param + ".type");
  }
  return request_error("unknown content block type '" + quote_excerpt(type) + "'", param + ".type");
}

// A text block {type: "text", text, cache_control, citations: null}; its text is appended.
Error read_text_block(const json& block, const std::string& param, std::string* text) {
  if (Error e = refuse_unknown_fields(block, {"type", "text", "cache_control", "citations"}, param))
    return e;
  if (block.contains("citations") && !block["citations"].is_null()) {
    return unsupported_error("citations are not offered", param + ".citations");
  }
  if (Error e = check_cache_control(block, param)) return e;
  if (!block.contains("text") || !block["text"].is_string()) {
    return request_error("a text block needs a string 'text'", param + ".text");
  }
  *text += block["text"].get<std::string>();
  return {};
}

using BlockReader =
    std::function<Error(const json& block, const std::string& param, const std::string& type)>;

// Calls `read` with each block of the array `content`, its param and its type, until an error.
Error read_blocks(const json& content, const std::string& param, const BlockReader& read) {
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string block_param = param + "[" + std::to_string(i) + "]";
    if (!content[i].is_object()) return request_error("a block must be an object", block_param);
    if (Error e = read(content[i], block_param, text_member(content[i], "type", ""))) return e;
  }
  return {};
}

// `content` as text: a string, or an array of text blocks.
Error read_text_content(const json& content, const std::string& param, std::string* text) {
  if (content.is_string()) {
    *text = content.get<std::string>();
    return {};
  }
  if (!content.is_array()) {
    return request_error("content must be a string or an array of text blocks", param);
  }
  return read_blocks(
      content, param,
      [&](const json& block, const std::string& block_param, const std::string& type) {
        if (type != "text") return refuse_block(type, block_param);
        return read_text_block(block, block_param, text);
      });
}

// A tool_result block {tool_use_id, content, is_error}: a tool message. An error result reaches
// the model as its text after "Error: " (chat templates have no error flag).
Error read_tool_result(const json& block, const std::string& param,
                       const std::vector<ChatMessage>& earlier, ChatMessage* out) {
  if (Error e = refuse_unknown_fields(
          block, {"type", "tool_use_id", "content", "is_error", "cache_control"}, param)) {
    return e;
  }
  if (Error e = check_cache_control(block, param)) return e;
  const json id = block.value("tool_use_id", json(nullptr));
  if (!id.is_string()) {
    return request_error("a tool_result needs the 'tool_use_id' it answers",
                         param + ".tool_use_id");
  }
  out->role = "tool";
  out->tool_call_id = id.get<std::string>();
  out->tool_name = called_function(earlier, out->tool_call_id);
  if (out->tool_name.empty()) {
    return request_error("tool_use_id '" + quote_excerpt(out->tool_call_id) +
                             "' matches no tool_use block of an earlier assistant message",
                         param + ".tool_use_id");
  }
  const json is_error = block.value("is_error", json(false));
  if (!is_error.is_boolean())
    return request_error("'is_error' must be a boolean", param + ".is_error");
  if (Error e =
          read_text_content(block.value("content", json("")), param + ".content", &out->content)) {
    return e;
  }
  if (is_error.get<bool>()) out->content = "Error: " + out->content;
  return {};
}

// A user message's blocks: runs of text blocks become user messages, each tool_result a tool
// message, in their order.
Error read_user_blocks(const json& content, const std::string& param,
                       std::vector<ChatMessage>* messages) {
  bool in_text = false;
  return read_blocks(
      content, param,
      [&](const json& block, const std::string& block_param, const std::string& type) {
        if (type == "text") {
          if (!in_text) messages->push_back({"user", "", "", {}, "", ""});
          in_text = true;
          return read_text_block(block, block_param, &messages->back().content);
        }
        if (type != "tool_result") return refuse_block(type, block_param);
        in_text = false;
        ChatMessage result;
        if (Error e = read_tool_result(block, block_param, *messages, &result)) return e;
        messages->push_back(std::move(result));
        return Error{};
      });
}

// A tool_use block {id, name, input}: a call the assistant made.
Error read_tool_use(const json& block, const std::string& param, ToolCall* call) {
  if (Error e =
          refuse_unknown_fields(block, {"type", "id", "name", "input", "cache_control"}, param))
    return e;
  if (Error e = check_cache_control(block, param)) return e;
  if (!block.contains("id") || !block["id"].is_string() || block["id"].get<std::string>().empty()) {
    return request_error("a tool_use block needs a string 'id'", param + ".id");
  }
  if (!block.contains("name") || !block["name"].is_string()) {
    return request_error("a tool_use block needs a string 'name'", param + ".name");
  }
  const json input = block.value("input", json::object());
  if (!input.is_object()) return request_error("'input' must be an object", param + ".input");
  *call = {block["id"].get<std::string>(), block["name"].get<std::string>(), input.dump()};
  return {};
}

// A thinking block {thinking, signature} of an earlier answer: the assistant's reasoning.
Error read_thinking(const json& block, const std::string& param, std::string* reasoning) {
  if (Error e = refuse_unknown_fields(block, {"type", "thinking", "signature"}, param)) return e;
  if (!block.contains("thinking") || !block["thinking"].is_string()) {
    return request_error("a thinking block needs a string 'thinking'", param + ".thinking");
  }
  *reasoning += block["thinking"].get<std::string>();
  return {};
}

Error read_assistant_blocks(const json& content, const std::string& param, ChatMessage* message) {
  return read_blocks(
      content, param,
      [&](const json& block, const std::string& block_param, const std::string& type) {
        if (type == "text") return read_text_block(block, block_param, &message->content);
        if (type == "thinking") return read_thinking(block, block_param, &message->reasoning);
        if (type != "tool_use") return refuse_block(type, block_param);
        ToolCall call;
        if (Error e = read_tool_use(block, block_param, &call)) return e;
        message->tool_calls.push_back(std::move(call));
        return Error{};
      });
}

Error read_message(const json& item, const std::string& param, std::vector<ChatMessage>* messages) {
  if (!item.is_object()) return request_error("a message must be an object", param);
  if (Error e = refuse_unknown_fields(item, {"role", "content"}, param)) return e;
  const std::string role = text_member(item, "role", "");
  if (role != "user" && role != "assistant") {
    return request_error("role must be 'user' or 'assistant'", param + ".role");
  }
  const json content = item.value("content", json(nullptr));
  const std::string content_param = param + ".content";
  if (content.is_string()) {
    messages->push_back({role, content.get<std::string>(), "", {}, "", ""});
    return {};
  }
  if (!content.is_array()) {
    return request_error("content must be a string or an array of blocks", content_param);
  }
  if (role == "user") return read_user_blocks(content, content_param, messages);
  ChatMessage message{"assistant", "", "", {}, "", ""};
  if (Error e = read_assistant_blocks(content, content_param, &message)) return e;
  messages->push_back(std::move(message));
  return {};
}

Error read_messages(const json& body, std::vector<ChatMessage>* messages) {
  if (body.contains("system") && !body["system"].is_null()) {
    ChatMessage system{"system", "", "", {}, "", ""};
    if (Error e = read_text_content(body["system"], "system", &system.content)) return e;
    messages->push_back(std::move(system));
  }
  const json list = body.value("messages", json(nullptr));
  if (!list.is_array() || list.empty()) {
    return request_error("'messages' must be a non-empty array", "messages");
  }
  for (size_t i = 0; i < list.size(); ++i) {
    if (Error e = read_message(list[i], "messages[" + std::to_string(i) + "]", messages)) return e;
  }
  if (list.back().value("role", json(nullptr)) == "assistant") {
    return unsupported_error(
        "a final assistant message (a prefill to continue) is not offered; end with a user "
        "message",
        "messages[" + std::to_string(list.size() - 1) + "]");
  }
  return {};
}

// `thinking`: {type: "enabled", budget_tokens} or {type: "disabled"}. Enabled lets a reasoning
// model's template reason (its reasoning comes back as thinking blocks); the budget is checked
// as Anthropic does, and max_tokens bounds thinking and answer together. Absent: disabled.
Error read_thinking_setting(const json& body, int64_t max_tokens, ChatOptions* chat) {
  chat->enable_thinking = false;
  if (!body.contains("thinking") || body["thinking"].is_null()) return {};
  const json& thinking = body["thinking"];
  const std::string type = text_member(thinking, "type", "");
  if (!thinking.is_object() || (type != "enabled" && type != "disabled")) {
    return request_error(
        "'thinking' must be {\"type\": \"enabled\", \"budget_tokens\": N} or "
        "{\"type\": \"disabled\"}",
        "thinking");
  }
  if (type == "disabled") return refuse_unknown_fields(thinking, {"type"}, "thinking");
  if (Error e = refuse_unknown_fields(thinking, {"type", "budget_tokens"}, "thinking")) return e;
  const json budget = thinking.value("budget_tokens", json(nullptr));
  if (!budget.is_number_integer() || budget.get<int64_t>() < kMinThinkingBudget ||
      (max_tokens > 0 && budget.get<int64_t>() >= max_tokens)) {
    return request_error("'budget_tokens' must be an integer of at least 1024 and below max_tokens",
                         "thinking.budget_tokens");
  }
  chat->enable_thinking = true;
  return {};
}

Error read_metadata(const json& body) {
  if (!body.contains("metadata") || body["metadata"].is_null()) return {};
  const json& metadata = body["metadata"];
  if (!metadata.is_object()) return request_error("'metadata' must be an object", "metadata");
  if (Error e = refuse_unknown_fields(metadata, {"user_id"}, "metadata")) return e;
  const json user = metadata.value("user_id", json(nullptr));
  if (user.is_null()) return {};
  if (!user.is_string() || user.get<std::string>().size() > kMaxUserIdBytes) {
    return request_error("'user_id' must be a string of at most 256 bytes", "metadata.user_id");
  }
  current_access().end_user = user.get<std::string>();
  return {};
}

Error read_stop_sequences(const json& body, std::vector<std::string>* stops) {
  if (!body.contains("stop_sequences") || body["stop_sequences"].is_null()) return {};
  const json& list = body["stop_sequences"];
  if (!list.is_array() || list.size() > kMaxStopSequences) {
    return request_error("'stop_sequences' must be an array of at most 64 strings",
                         "stop_sequences");
  }
  for (const json& stop : list) {
    if (!stop.is_string() || stop.get<std::string>().empty()) {
      return request_error("stop sequences must be non-empty strings", "stop_sequences");
    }
    stops->push_back(stop.get<std::string>());
  }
  return {};
}

// What create and count_tokens share: the model, the conversation, tools and thinking.
Error read_conversation(const json& body, int64_t max_tokens, TextRequest* request) {
  ParamReader params(body);
  auto model = params.string("model", true);
  if (params.error) return params.error;
  request->model = *model;
  if (Error e = read_messages(body, &request->messages)) return e;
  RequestTools tools;
  if (Error e = read_tools(body, ToolDialect::ANTHROPIC, &tools)) return e;
  request->chat = std::move(tools.options);
  return read_thinking_setting(body, max_tokens, &request->chat);
}

Error read_call(const json& body, MessagesCall* call) {
  if (Error e = check_messages_fields(body)) return e;
  ParamReader params(body);
  TextRequest& request = call->request;
  if (!params.has("max_tokens")) {
    return request_error("missing required parameter 'max_tokens'", "max_tokens");
  }
  auto max_tokens = params.integer("max_tokens", 1, 1 << 24);
  auto temperature = params.number("temperature", 0.0, 1.0);
  auto top_p = params.number("top_p", 0.0, 1.0);
  auto top_k = params.integer("top_k", 0, 1 << 20);
  auto stream = params.boolean("stream");
  if (params.error) return params.error;
  if (Error e = read_conversation(body, *max_tokens, &request)) return e;
  if (Error e = read_metadata(body)) return e;
  if (Error e = read_stop_sequences(body, &call->header.stop_sequences)) return e;
  request.stop = call->header.stop_sequences;
  call->header.model = request.model;
  request.max_tokens = static_cast<int>(*max_tokens);
  request.sampling.temperature = static_cast<float>(temperature.value_or(1.0));
  request.sampling.top_p = static_cast<float>(top_p.value_or(1.0));
  request.sampling.top_k = static_cast<int>(top_k.value_or(0));
  call->stream = stream.value_or(false);
  return {};
}

Error read_count_request(const json& body, TextRequest* request) {
  if (Error e = check_count_tokens_fields(body)) return e;
  return read_conversation(body, 0, request);
}

void respond_streaming(const httplib::Request& req, httplib::Response& res,
                       std::shared_ptr<MessagesCall> call, std::shared_ptr<TextStream> stream) {
  auto client_gone = req.is_connection_closed;
  res.set_chunked_content_provider(
      "text/event-stream", [call, stream, client_gone](size_t, httplib::DataSink& sink) {
        MessageEvents writer(call->header);
        const std::string first = writer.start(stream->prompt_tokens());
        if (!sink.write(first.data(), first.size())) {
          stream->cancel();
          return false;
        }
        const bool finished = drain_text_stream(*stream, client_gone, [&](TextEvent& event) {
          const std::string text = writer.on_event(event);
          return text.empty() || sink.write(text.data(), text.size());
        });
        if (finished) sink.done();
        return finished;
      });
}

void respond_plain(const httplib::Request& req, httplib::Response& res, const MessagesCall& call,
                   TextStream& stream) {
  std::string text, reasoning;
  TextEvent last;
  const bool finished = drain_text_stream(stream, req.is_connection_closed, [&](TextEvent& event) {
    text += event.delta.content;
    reasoning += event.delta.reasoning;
    if (event.done) last = std::move(event);
    return true;
  });
  if (!finished) return;
  if (last.finish == FinishReason::ERROR || last.finish == FinishReason::CANCELLED) {
    return send_anthropic_error(res, last.error);
  }
  send_json(res, message_json(call.header, reasoning, text, last));
}

void create_message(ApiContext& ctx, const httplib::Request& req, httplib::Response& res) {
  json body;
  Error error;
  if (!parse_json_body(req, &body, &error)) return send_anthropic_error(res, error);
  auto call = std::make_shared<MessagesCall>();
  if ((error = read_call(body, call.get()))) return send_anthropic_error(res, error);
  call->request.received = current_access().started;
  std::shared_ptr<TextStream> stream = ctx.text.start(call->request, &error);
  if (!stream) {
    return send_anthropic_error(
        res, with_endpoint_advice(error, ctx.registry, call->request.model, Modality::TEXT));
  }
  if (call->stream) return respond_streaming(req, res, call, stream);
  respond_plain(req, res, *call, *stream);
}

void count_tokens(ApiContext& ctx, const httplib::Request& req, httplib::Response& res) {
  json body;
  Error error;
  if (!parse_json_body(req, &body, &error)) return send_anthropic_error(res, error);
  TextRequest request;
  if ((error = read_count_request(body, &request))) return send_anthropic_error(res, error);
  int tokens = 0;
  if ((error = ctx.text.count_prompt_tokens(request, &tokens))) {
    return send_anthropic_error(
        res, with_endpoint_advice(error, ctx.registry, request.model, Modality::TEXT));
  }
  send_json(res, {{"input_tokens", tokens}});
}

}  // namespace

Error check_messages_request(const json& body) {
  MessagesCall call;
  return read_call(body, &call);
}

void register_messages_routes(httplib::Server& server, ApiContext& ctx) {
  server.Post("/v1/messages", [&ctx](const httplib::Request& req, httplib::Response& res) {
    create_message(ctx, req, res);
  });
  server.Post(
      "/v1/messages/count_tokens",
      [&ctx](const httplib::Request& req, httplib::Response& res) { count_tokens(ctx, req, res); });
}

}  // namespace allm
