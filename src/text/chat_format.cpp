#include "text/chat_format.h"

#include "chat.h"

namespace allm {

namespace {

class CommonChatOutputParser : public ChatOutputParser {
 public:
  explicit CommonChatOutputParser(common_chat_parser_params params) : params_(std::move(params)) {}

  ChatDelta push(const std::string& text) override {
    raw_ += text;
    return reparse(/*partial=*/true);
  }
  ChatDelta finish() override { return reparse(/*partial=*/false); }
  ChatMessage message() const override {
    return {"assistant", parsed_.content, parsed_.reasoning_content};
  }

 private:
  // Re-parses everything generated so far; the parser needs the whole text to place markers.
  ChatDelta reparse(bool partial) {
    common_chat_msg next;
    try {
      next = common_chat_parse(raw_, partial, params_);
    } catch (const std::exception&) {
      if (partial) return {};  // the text may become parsable with more tokens
      next = common_chat_msg();
      next.role = "assistant";
      next.content = raw_;  // unparsable at the end: the raw text is the answer
    }
    ChatDelta delta;
    if (next.empty() && partial) return delta;
    for (const auto& diff : common_chat_msg_diff::compute_diffs(parsed_, next)) {
      delta.content += diff.content_delta;
      delta.reasoning += diff.reasoning_content_delta;
    }
    parsed_ = std::move(next);
    return delta;
  }

  common_chat_parser_params params_;
  std::string raw_;
  common_chat_msg parsed_;
};

class CommonChatFormatter : public ChatFormatter {
 public:
  explicit CommonChatFormatter(common_chat_templates_ptr templates)
      : templates_(std::move(templates)) {}

  Error format(const std::vector<ChatMessage>& messages, FormattedChat* out) const override {
    common_chat_templates_inputs inputs;
    for (const ChatMessage& message : messages) {
      common_chat_msg msg;
      msg.role = message.role;
      msg.content = message.content;
      msg.reasoning_content = message.reasoning;
      inputs.messages.push_back(std::move(msg));
    }
    inputs.add_generation_prompt = true;
    inputs.use_jinja = true;
    inputs.reasoning_format = COMMON_REASONING_FORMAT_DEEPSEEK;
    common_chat_params params;
    try {
      params = common_chat_templates_apply(templates_.get(), inputs);
    } catch (const std::exception& e) {
      return make_error(ErrorCode::INTERNAL,
                        std::string("the model's chat template failed: ") + e.what());
    }
    common_chat_parser_params parser_params(params);
    parser_params.reasoning_format = COMMON_REASONING_FORMAT_DEEPSEEK;
    if (!params.parser.empty()) parser_params.parser.load(params.parser);
    out->prompt = std::move(params.prompt);
    out->extra_stops = std::move(params.additional_stops);
    out->parser = std::make_unique<CommonChatOutputParser>(std::move(parser_params));
    return {};
  }

 private:
  common_chat_templates_ptr templates_;
};

}  // namespace

std::unique_ptr<ChatFormatter> ChatFormatter::create(const std::string& jinja_template,
                                                     const std::string& bos_text,
                                                     const std::string& eos_text, Error* error) {
  try {
    // llama.cpp's chat layer names its built-in fallback "chatml"; an empty string would make it
    // look for a template in a model it is not given.
    const std::string source = jinja_template.empty() ? "chatml" : jinja_template;
    auto templates = common_chat_templates_init(nullptr, source, bos_text, eos_text);
    if (!templates) {
      *error = make_error(ErrorCode::LOAD_FAILED, "the model's chat template could not be read");
      return nullptr;
    }
    return std::make_unique<CommonChatFormatter>(std::move(templates));
  } catch (const std::exception& e) {
    *error = make_error(ErrorCode::LOAD_FAILED,
                        std::string("the model's chat template is invalid: ") + e.what());
    return nullptr;
  }
}

}  // namespace allm
