// Anthropic's Messages API answers: the message object and the stream's events.
#include "api/message_events.h"

namespace allm {

namespace {

// Why the answer ended, and the client's stop sequence it ended at (null when none).
std::pair<const char*, json> stop_reason(const MessageHeader& header, const TextEvent& done) {
  if (done.finish == FinishReason::LENGTH) return {"max_tokens", nullptr};
  if (!done.message.tool_calls.empty()) return {"tool_use", nullptr};
  for (const std::string& stop : header.stop_sequences) {
    if (stop == done.stop_sequence) return {"stop_sequence", stop};
  }
  return {"end_turn", nullptr};
}

// Anthropic counts prompt tokens read from the cache apart from the others.
json usage_json(const TextUsage& usage) {
  return {{"input_tokens", usage.prompt_tokens - usage.cached_tokens},
          {"cache_creation_input_tokens", 0},
          {"cache_read_input_tokens", usage.cached_tokens},
          {"output_tokens", usage.completion_tokens}};
}

json message_object(const MessageHeader& header, json content) {
  return {{"id", header.id},
          {"type", "message"},
          {"role", "assistant"},
          {"model", header.model},
          {"content", std::move(content)},
          {"stop_reason", nullptr},
          {"stop_sequence", nullptr}};
}

bool failed(const TextEvent& event) {
  return event.finish == FinishReason::ERROR || event.finish == FinishReason::CANCELLED;
}

// A call's input as a JSON object; the tool-call grammar makes it one.
json tool_input(const ToolCall& call) {
  json input = json::parse(call.arguments, nullptr, false);
  return input.is_object() ? input : json::object();
}

json tool_use_block(const ToolCall& call, json input) {
  return {{"type", "tool_use"}, {"id", call.id}, {"name", call.name}, {"input", std::move(input)}};
}

}  // namespace

std::string MessageEvents::start(int prompt_tokens) {
  json message = message_object(header_, json::array());
  message["usage"] = {{"input_tokens", prompt_tokens}, {"output_tokens", 0}};
  return sse_event("message_start", {{"type", "message_start"}, {"message", message}}) +
         sse_event("ping", {{"type", "ping"}});
}

std::string MessageEvents::on_event(const TextEvent& event) {
  std::string out;
  if (!event.delta.reasoning.empty()) {
    out += open("thinking", {{"type", "thinking"}, {"thinking", ""}, {"signature", ""}});
    out += delta({{"type", "thinking_delta"}, {"thinking", event.delta.reasoning}});
  }
  if (!event.delta.content.empty()) {
    out += open("text", {{"type", "text"}, {"text", ""}});
    out += delta({{"type", "text_delta"}, {"text", event.delta.content}});
  }
  for (const ToolCallDelta& piece : event.delta.tool_calls) {
    if (!piece.id.empty()) {
      out += open("tool_use", tool_use_block({piece.id, piece.name, ""}, json::object()), true);
    }
    if (!piece.arguments.empty()) {
      out += delta({{"type", "input_json_delta"}, {"partial_json", piece.arguments}});
    }
  }
  if (!event.done) return out;
  if (failed(event)) return out + sse_event("error", anthropic_error_body(event.error));
  out += close();
  const auto [reason, sequence] = stop_reason(header_, event);
  return out +
         sse_event("message_delta",
                   {{"type", "message_delta"},
                    {"delta", {{"stop_reason", reason}, {"stop_sequence", sequence}}},
                    {"usage", usage_json(event.usage)}}) +
         sse_event("message_stop", {{"type", "message_stop"}});
}

std::string MessageEvents::open(const std::string& kind, const json& block, bool always) {
  if (kind == open_kind_ && !always) return "";
  std::string out = close();
  open_kind_ = kind;
  return out +
         sse_event("content_block_start",
                   {{"type", "content_block_start"}, {"index", index_}, {"content_block", block}});
}

std::string MessageEvents::close() {
  if (open_kind_.empty()) return "";
  open_kind_.clear();
  return sse_event("content_block_stop", {{"type", "content_block_stop"}, {"index", index_++}});
}

std::string MessageEvents::delta(const json& delta) const {
  return sse_event("content_block_delta",
                   {{"type", "content_block_delta"}, {"index", index_}, {"delta", delta}});
}

json message_json(const MessageHeader& header, const std::string& reasoning,
                  const std::string& text, const TextEvent& done) {
  json content = json::array();
  if (!reasoning.empty()) {
    content.push_back({{"type", "thinking"}, {"thinking", reasoning}, {"signature", ""}});
  }
  if (!text.empty()) content.push_back({{"type", "text"}, {"text", text}});
  for (const ToolCall& call : done.message.tool_calls) {
    content.push_back(tool_use_block(call, tool_input(call)));
  }
  json message = message_object(header, std::move(content));
  const auto [reason, sequence] = stop_reason(header, done);
  message["stop_reason"] = reason;
  message["stop_sequence"] = sequence;
  message["usage"] = usage_json(done.usage);
  return message;
}

}  // namespace allm
