// POST /v1/chat/completions (kept for compatibility with existing clients).
#include "api/access_log.h"
#include "api/http_util.h"
#include "api/ids.h"
#include "api/logprobs.h"
#include "api/model_advice.h"
#include "api/output_format.h"
#include "api/request_fields.h"
#include "api/request_parsing.h"
#include "api/routes.h"
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

Error read_messages(const json& body, std::vector<ChatMessage>* messages) {
  if (!body.contains("messages"))
    return request_error("missing required parameter 'messages'", "messages");
  const json& list = body["messages"];
  if (!list.is_array() || list.empty()) {
    return request_error("'messages' must be a non-empty array", "messages");
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string param = "messages[" + std::to_string(i) + "]";
    const json& item = list[i];
    if (!item.is_object()) return request_error(param + " must be an object", param);
    const std::string role =
        item.contains("role") && item["role"].is_string() ? item["role"].get<std::string>() : "";
    if (role != "system" && role != "developer" && role != "user" && role != "assistant") {
      return request_error("role must be one of system, developer, user, assistant",
                           param + ".role");
    }
    ChatMessage message;
    message.role = role == "developer" ? "system" : role;
    if (Error e = read_message_content(item.value("content", json(nullptr)), param + ".content",
                                       &message.content)) {
      return e;
    }
    messages->push_back(std::move(message));
  }
  return {};
}

Error read_stop(const json& body, std::vector<std::string>* stop) {
  if (!body.contains("stop") || body["stop"].is_null()) return {};
  const json& value = body["stop"];
  if (value.is_string()) {
    stop->push_back(value.get<std::string>());
    return {};
  }
  if (!value.is_array() || value.size() > 4) {
    return request_error("'stop' must be a string or an array of up to 4 strings", "stop");
  }
  for (const json& s : value) {
    if (!s.is_string()) return request_error("'stop' entries must be strings", "stop");
    stop->push_back(s.get<std::string>());
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
  auto temperature = params.number("temperature", 0.0, 2.0);
  auto top_p = params.number("top_p", 0.0, 1.0);
  auto top_k = params.integer("top_k", 0, 1 << 20);
  auto min_p = params.number("min_p", 0.0, 1.0);
  auto presence = params.number("presence_penalty", -2.0, 2.0);
  auto frequency = params.number("frequency_penalty", -2.0, 2.0);
  auto seed = params.integer("seed", INT64_MIN, INT64_MAX);
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
  request.grammar = std::move(format.grammar);

  request.model = *model;
  request.prompt_param = "messages";
  request.max_tokens_param = max_completion ? "max_completion_tokens" : "max_tokens";
  request.max_tokens = static_cast<int>(max_completion.value_or(max_tokens.value_or(0)));
  request.sampling.temperature = static_cast<float>(temperature.value_or(1.0));
  request.sampling.top_p = static_cast<float>(top_p.value_or(1.0));
  request.sampling.top_k = static_cast<int>(top_k.value_or(0));
  request.sampling.min_p = static_cast<float>(min_p.value_or(0.0));
  request.sampling.presence_penalty = static_cast<float>(presence.value_or(0.0));
  request.sampling.frequency_penalty = static_cast<float>(frequency.value_or(0.0));
  // Every signed 64-bit seed is its own random stream; negative ones are not special.
  if (seed) request.sampling.seed = static_cast<uint64_t>(*seed);
  call->logprobs = logprobs.value_or(false);
  request.top_logprobs = call->logprobs ? static_cast<int>(top_logprobs.value_or(0)) : -1;
  call->stream = stream.value_or(false);
  return {};
}

const char* finish_reason(FinishReason reason) {
  return reason == FinishReason::LENGTH ? "length" : "stop";
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
                                              {"finish_reason", finish_reason(event.finish)}}})));
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
  json message = {{"role", "assistant"}, {"content", content}, {"refusal", nullptr}};
  if (!reasoning.empty()) message["reasoning_content"] = reasoning;
  json choice = {{"index", 0},
                 {"message", message},
                 {"logprobs", call.logprobs ? json{{"content", logprobs}, {"refusal", nullptr}}
                                            : json(nullptr)},
                 {"finish_reason", finish_reason(last.finish)}};
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
