// POST /v1/chat/completions (kept for compatibility with existing clients).
#include "api/access_log.h"
#include "api/http_util.h"
#include "api/logprobs.h"
#include "api/model_advice.h"
#include "api/output_format.h"
#include "api/request_fields.h"
#include "api/request_parsing.h"
#include "api/routes.h"
#include "api/tools.h"
#include "base/random_id.h"
#include "core/text_manager.h"

namespace allm {

namespace {

struct ChatCall {
  TextRequest request;
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;
  std::string id = random_id("chatcmpl-");
  int64_t created = unix_time();
};

Error read_message_content(const json& content, const std::string& param, std::string* text) {
  if (content.is_null()) return {};
  if (content.is_string()) {
    *text = content.get<std::string>();
    return {};
  }
  if (!content.is_array()) return request_error("content must be a string or an array", param);
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string part_param = param + "[" + std::to_string(i) + "]";
    if (text_member(part, "type", "") != "text" || !part.contains("text") ||
        !part["text"].is_string()) {
      return request_error(
          "only text content parts ({\"type\":\"text\",\"text\":...}) are "
          "supported",
          part_param);
    }
    *text += part["text"].get<std::string>();
  }
  return {};
}

// An assistant message's `tool_calls`: [{id, type: "function", function: {name, arguments}}].
Error read_assistant_calls(const json& calls, const std::string& param,
                           std::vector<ToolCall>* out) {
  if (calls.is_null()) return {};
  if (!calls.is_array()) return request_error("'tool_calls' must be an array", param);
  for (size_t i = 0; i < calls.size(); ++i) {
    const std::string call_param = param + "[" + std::to_string(i) + "]";
    const json& call = calls[i];
    if (!call.is_object() || !call.contains("id") || !call["id"].is_string() ||
        !call["id"].get_ref<const std::string&>().size()) {
      return request_error("a tool call needs a string 'id'", call_param + ".id");
    }
    if (text_member(call, "type", "function") != "function") {
      return request_error("only function tool calls are offered", call_param + ".type");
    }
    const json function = call.value("function", json(nullptr));
    if (!function.is_object() || !function.contains("name") || !function["name"].is_string()) {
      return request_error("a tool call needs 'function': {\"name\", \"arguments\"}",
                           call_param + ".function");
    }
    const json arguments = function.value("arguments", json("{}"));
    if (!arguments.is_string()) {
      return request_error("'arguments' must be a string of JSON",
                           call_param + ".function.arguments");
    }
    out->push_back({call["id"].get<std::string>(), function["name"].get<std::string>(),
                    arguments.get<std::string>()});
  }
  return {};
}

Error read_message(const json& item, const std::string& param,
                   const std::vector<ChatMessage>& earlier, ChatMessage* message) {
  if (!item.is_object()) return request_error(param + " must be an object", param);
  const std::string role =
      item.contains("role") && item["role"].is_string() ? item["role"].get<std::string>() : "";
  if (role != "system" && role != "developer" && role != "user" && role != "assistant" &&
      role != "tool") {
    return request_error("role must be one of system, developer, user, assistant, tool",
                         param + ".role");
  }
  message->role = role == "developer" ? "system" : role;
  if (Error e = read_message_content(item.value("content", json(nullptr)), param + ".content",
                                     &message->content)) {
    return e;
  }
  if (role == "assistant") {
    return read_assistant_calls(item.value("tool_calls", json(nullptr)), param + ".tool_calls",
                                &message->tool_calls);
  }
  if (role != "tool") return {};
  const json id = item.value("tool_call_id", json(nullptr));
  if (!id.is_string()) {
    return request_error("a tool message needs the 'tool_call_id' it answers",
                         param + ".tool_call_id");
  }
  message->tool_call_id = id.get<std::string>();
  message->tool_name = called_function(earlier, message->tool_call_id);
  if (message->tool_name.empty()) {
    return request_error("tool_call_id '" + quote_excerpt(message->tool_call_id) +
                             "' matches no tool call of an earlier assistant message",
                         param + ".tool_call_id");
  }
  return {};
}

Error read_messages(const json& body, std::vector<ChatMessage>* messages) {
  if (!body.contains("messages"))
    return request_error("missing required parameter 'messages'", "messages");
  const json& list = body["messages"];
  if (!list.is_array() || list.empty()) {
    return request_error("'messages' must be a non-empty array", "messages");
  }
  for (size_t i = 0; i < list.size(); ++i) {
    ChatMessage message;
    if (Error e =
            read_message(list[i], "messages[" + std::to_string(i) + "]", *messages, &message)) {
      return e;
    }
    messages->push_back(std::move(message));
  }
  return {};
}

Error read_call(const json& body, ChatCall* call) {
  if (Error e = check_chat_fields(body)) return e;
  ParamReader params(body);
  TextRequest& request = call->request;
  auto model = params.string("model", true);
  auto max_tokens = params.integer("max_tokens", 1, 1 << 24);
  auto max_completion = params.integer("max_completion_tokens", 1, 1 << 24);
  read_sampling(params, &request.sampling);
  auto stream = params.boolean("stream");
  auto logprobs = params.boolean("logprobs");
  auto top_logprobs = params.integer("top_logprobs", 0, 20);
  params.integer("n", 1, 1);  // several choices per request are not offered
  // Its shape and types were checked with the other request fields (request_fields.cpp).
  if (params.has("stream_options")) {
    call->include_usage = body["stream_options"].value("include_usage", false);
  }
  if (top_logprobs && !logprobs.value_or(false)) {
    params.fail("'top_logprobs' requires 'logprobs': true", "top_logprobs");
  }
  if (params.error) return params.error;
  if (Error e = read_messages(body, &request.messages)) return e;
  if (Error e = read_stop(body, &request.stop)) return e;
  OutputFormat format;
  if (Error e = read_response_format(body, &format)) return e;
  RequestTools tools;
  if (Error e = read_tools(body, ToolDialect::CHAT, &tools)) return e;
  request.grammar = std::move(format.grammar);
  request.chat = std::move(tools.options);
  request.chat.answer_schema = format.schema;
  request.chat.reasoning_effort = text_member(body, "reasoning_effort", "");

  request.model = *model;
  request.prompt_param = "messages";
  request.max_tokens_param = max_completion ? "max_completion_tokens" : "max_tokens";
  request.max_tokens = static_cast<int>(max_completion.value_or(max_tokens.value_or(0)));
  call->logprobs = logprobs.value_or(false);
  request.top_logprobs = call->logprobs ? static_cast<int>(top_logprobs.value_or(0)) : -1;
  call->stream = stream.value_or(false);
  return {};
}

const char* finish_reason(const TextEvent& done) {
  if (done.finish == FinishReason::LENGTH) return "length";
  return done.message.tool_calls.empty() ? "stop" : "tool_calls";
}

// A call's pieces as streamed: index, id, type and name with the first, then the arguments.
json tool_call_chunks(const std::vector<ToolCallDelta>& calls) {
  json out = json::array();
  for (const ToolCallDelta& call : calls) {
    json function = {{"arguments", call.arguments}};
    json piece = {{"index", call.index}};
    if (!call.id.empty()) {
      piece["id"] = call.id;
      piece["type"] = "function";
      function["name"] = call.name;
    }
    piece["function"] = std::move(function);
    out.push_back(std::move(piece));
  }
  return out;
}

json message_tool_calls(const std::vector<ToolCall>& calls) {
  json out = json::array();
  for (const ToolCall& call : calls) {
    out.push_back({{"id", call.id},
                   {"type", "function"},
                   {"function", {{"name", call.name}, {"arguments", call.arguments}}}});
  }
  return out;
}

json usage_json(const TextUsage& usage) {
  return {{"prompt_tokens", usage.prompt_tokens},
          {"completion_tokens", usage.completion_tokens},
          {"total_tokens", usage.prompt_tokens + usage.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", usage.cached_tokens}}},
          {"completion_tokens_details", {{"reasoning_tokens", 0}}}};
}

json chunk(const ChatCall& call, json choices) {
  json c = {{"id", call.id},
            {"object", "chat.completion.chunk"},
            {"created", call.created},
            {"model", call.request.model},
            {"system_fingerprint", "allm"},
            {"choices", std::move(choices)}};
  if (call.include_usage) c["usage"] = nullptr;
  return c;
}

std::string chunk_line(const json& c) {
  return sse_data(c.dump(-1, ' ', false, json::error_handler_t::replace));
}

// The chunks for one event: content/reasoning deltas with their tokens' logprobs, then the
// finishing chunk, the usage chunk when asked for, and [DONE].
std::string event_chunks(const ChatCall& call, const TextEvent& event) {
  std::string out;
  if (!event.delta.empty() || !event.logprobs.empty()) {
    json delta = json::object();
    if (!event.delta.content.empty()) delta["content"] = event.delta.content;
    if (!event.delta.reasoning.empty()) delta["reasoning_content"] = event.delta.reasoning;
    if (!event.delta.tool_calls.empty())
      delta["tool_calls"] = tool_call_chunks(event.delta.tool_calls);
    json choice = {
        {"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", nullptr}};
    if (call.logprobs) {
      json content = json::array();
      append_logprob_entries(event.logprobs, &content);
      choice["logprobs"] = {{"content", content}, {"refusal", nullptr}};
    }
    out += chunk_line(chunk(call, json::array({choice})));
  }
  if (!event.done) return out;
  if (event.finish == FinishReason::ERROR || event.finish == FinishReason::CANCELLED) {
    out += sse_data(error_body(event.error).dump(-1, ' ', false, json::error_handler_t::replace));
    return out + sse_data("[DONE]");
  }
  out += chunk_line(chunk(call, json::array({{{"index", 0},
                                              {"delta", json::object()},
                                              {"logprobs", nullptr},
                                              {"finish_reason", finish_reason(event)}}})));
  if (call.include_usage) {
    json c = chunk(call, json::array());
    c["usage"] = usage_json(event.usage);
    out += chunk_line(c);
  }
  return out + sse_data("[DONE]");
}

void respond_streaming(const httplib::Request& req, httplib::Response& res,
                       std::shared_ptr<ChatCall> call, std::shared_ptr<TextStream> stream) {
  auto client_gone = req.is_connection_closed;
  res.set_chunked_content_provider("text/event-stream", [call, stream, client_gone](
                                                            size_t, httplib::DataSink& sink) {
    const std::string first =
        chunk_line(chunk(*call, json::array({{{"index", 0},
                                              {"delta", {{"role", "assistant"}, {"content", ""}}},
                                              {"logprobs", nullptr},
                                              {"finish_reason", nullptr}}})));
    if (!sink.write(first.data(), first.size())) {
      stream->cancel();
      return false;
    }
    const bool finished = drain_text_stream(*stream, client_gone, [&](TextEvent& event) {
      const std::string text = event_chunks(*call, event);
      return text.empty() || sink.write(text.data(), text.size());
    });
    if (finished) sink.done();
    return finished;
  });
}

void respond_plain(const httplib::Request& req, httplib::Response& res, const ChatCall& call,
                   TextStream& stream) {
  std::string content, reasoning;
  json logprobs = json::array();
  TextEvent last;
  const bool finished = drain_text_stream(stream, req.is_connection_closed, [&](TextEvent& event) {
    content += event.delta.content;
    reasoning += event.delta.reasoning;
    append_logprob_entries(event.logprobs, &logprobs);
    if (event.done) last = std::move(event);
    return true;
  });
  if (!finished) return;
  if (last.finish == FinishReason::ERROR || last.finish == FinishReason::CANCELLED) {
    return send_error(res, last.error);
  }
  const std::vector<ToolCall>& calls = last.message.tool_calls;
  json message = {{"role", "assistant"},
                  {"content", content.empty() && !calls.empty() ? json(nullptr) : json(content)},
                  {"refusal", nullptr}};
  if (!reasoning.empty()) message["reasoning_content"] = reasoning;
  if (!calls.empty()) message["tool_calls"] = message_tool_calls(calls);
  json choice = {{"index", 0},
                 {"message", message},
                 {"logprobs", call.logprobs ? json{{"content", logprobs}, {"refusal", nullptr}}
                                            : json(nullptr)},
                 {"finish_reason", finish_reason(last)}};
  send_json(res, {{"id", call.id},
                  {"object", "chat.completion"},
                  {"created", call.created},
                  {"model", call.request.model},
                  {"system_fingerprint", "allm"},
                  {"choices", json::array({choice})},
                  {"usage", usage_json(last.usage)}});
}

void create_chat_completion(ApiContext& ctx, const httplib::Request& req, httplib::Response& res) {
  json body;
  Error error;
  if (!parse_json_body(req, &body, &error)) return send_error(res, error);
  auto call = std::make_shared<ChatCall>();
  if ((error = read_call(body, call.get()))) return send_error(res, error);
  call->request.received = current_access().started;
  std::shared_ptr<TextStream> stream = ctx.text.start(call->request, &error);
  if (!stream) {
    return send_error(
        res, with_endpoint_advice(error, ctx.registry, call->request.model, Modality::TEXT));
  }
  if (call->stream) return respond_streaming(req, res, call, stream);
  respond_plain(req, res, *call, *stream);
}

}  // namespace

Error check_chat_completions_request(const json& body) {
  ChatCall call;
  return read_call(body, &call);
}

void register_chat_completions_routes(httplib::Server& server, ApiContext& ctx) {
  server.Post("/v1/chat/completions", [&ctx](const httplib::Request& req, httplib::Response& res) {
    create_chat_completion(ctx, req, res);
  });
}

}  // namespace allm
