// Anthropic's Messages API answers, from a generation's events: the message object
// (POST /v1/messages) and the server-sent events of a streamed one.
#pragma once

#include <string>
#include <vector>

#include "api/http_util.h"
#include "base/random_id.h"
#include "core/text_manager.h"

namespace allm {

// What a message says about itself besides its content.
struct MessageHeader {
  std::string id = random_id("msg_");
  std::string model;
  std::vector<std::string> stop_sequences;  // the client's (a template may add stops of its own)
};

// The message of a finished generation: its thinking, text and tool_use blocks, stop_reason
// (end_turn, max_tokens, stop_sequence, tool_use), stop_sequence and usage (the prompt tokens
// reused from the cache apart, as cache_read_input_tokens).
json message_json(const MessageHeader& header, const std::string& reasoning,
                  const std::string& text, const TextEvent& done);

// The events of a streamed answer: message_start and a ping, then per block a
// content_block_start, its deltas (thinking_delta, text_delta, input_json_delta) and a
// content_block_stop: a block is opened when output of another kind starts (thinking, text, each
// tool call) and closed when the next opens or the answer ends; then message_delta and
// message_stop, or an error event.
class MessageEvents {
 public:
  explicit MessageEvents(MessageHeader header) : header_(std::move(header)) {}
  std::string start(int prompt_tokens);
  std::string on_event(const TextEvent& event);

 private:
  // Opens a block of `kind` unless one is open already (`always`: a new one regardless).
  std::string open(const std::string& kind, const json& block, bool always = false);
  std::string close();
  std::string delta(const json& delta) const;

  MessageHeader header_;
  std::string open_kind_;  // "" when no block is open
  int index_ = 0;
};

}  // namespace allm
