#include "api/request_fields.h"

#include <initializer_list>

#include "api/access_log.h"

namespace allm {

namespace {

// What a field gets.
enum class Treatment {
  PARSED,        // the endpoint's parser reads and validates it
  REFUSED,       // not offered: any value but null is refused with `reason`
  UNLESS_FALSE,  // not offered: null and false are fine, anything else is refused with `reason`
  CHECKED,       // accepted with a documented meaning; `check` validates it
};

using FieldCheck = Error (*)(const json& value, const std::string& param);

struct RequestField {
  const char* name;
  Treatment treatment;
  const char* reason = nullptr;  // REFUSED, UNLESS_FALSE: why, and what to use instead
  FieldCheck check = nullptr;    // CHECKED
};

Error must_be_string(const json& value, const std::string& param, size_t max_bytes) {
  if (!value.is_string()) return request_error("'" + param + "' must be a string", param);
  if (value.get_ref<const std::string&>().size() > max_bytes) {
    return request_error(
        "'" + param + "' may be at most " + std::to_string(max_bytes) + " bytes long", param);
  }
  return {};
}

// `user` and `safety_identifier` name the client's end user; they go into the access log.
constexpr size_t kMaxEndUserBytes = 256;

Error end_user(const json& value, const std::string& param) {
  if (Error e = must_be_string(value, param, kMaxEndUserBytes)) return e;
  current_access().end_user = value.get<std::string>();
  return {};
}

// A key for OpenAI's prompt cache routing. Prompt prefixes are reused here on every request
// without one, so the key has nothing left to do.
Error cache_key(const json& value, const std::string& param) {
  return must_be_string(value, param, kMaxEndUserBytes);
}

Error cache_retention(const json& value, const std::string& param) {
  if (value == "in-memory") return {};
  if (value == "24h") {
    return unsupported_error("prompt prefixes are kept in memory only; use 'in-memory'", param);
  }
  return request_error("'" + param + "' must be 'in-memory' or '24h'", param);
}

Error service_tier(const json& value, const std::string& param) {
  if (value == "auto" || value == "default") return {};
  if (value.is_string()) {
    return unsupported_error("this server has one service tier; use 'auto' or 'default'", param);
  }
  return request_error("'" + param + "' must be a string", param);
}

// stream_options: include_usage (chat only; its parser reads the value checked here) and
// include_obfuscation.
Error stream_options(const json& value, const std::string& param, bool with_usage) {
  if (!value.is_object()) return request_error("'" + param + "' must be an object", param);
  for (const auto& [key, option] : value.items()) {
    const std::string option_param = param + "." + key;
    const bool usage = key == "include_usage" && with_usage;
    if (!usage && key != "include_obfuscation") {
      return request_error("unknown parameter '" + quote_excerpt(option_param) + "'", option_param,
                           "unknown_parameter");
    }
    if (!option.is_boolean()) {
      return request_error("'" + option_param + "' must be a boolean", option_param);
    }
    if (!usage && option.get<bool>()) {
      return unsupported_error("stream events carry no obfuscation padding here; use false",
                               option_param);
    }
  }
  return {};
}

Error responses_stream_options(const json& value, const std::string& param) {
  return stream_options(value, param, false);
}

Error chat_stream_options(const json& value, const std::string& param) {
  return stream_options(value, param, true);
}

// A reasoning effort: low, medium or high, passed to chat templates that take one (gpt-oss).
Error reasoning_effort(const json& value, const std::string& param) {
  if (value == "low" || value == "medium" || value == "high") return {};
  if (!value.is_string()) return request_error("'" + param + "' must be a string", param);
  return unsupported_error("the reasoning efforts offered are low, medium and high", param);
}

// `reasoning`: the effort (read by the Responses parser) and summary settings.
Error reasoning(const json& value, const std::string& param) {
  if (!value.is_object()) return request_error("'" + param + "' must be an object", param);
  for (const auto& [key, setting] : value.items()) {
    const std::string setting_param = param + "." + key;
    if (key != "effort" && key != "summary" && key != "generate_summary") {
      return request_error("unknown parameter '" + quote_excerpt(setting_param) + "'",
                           setting_param, "unknown_parameter");
    }
    if (setting.is_null()) continue;
    if (key == "effort") {
      if (Error e = reasoning_effort(setting, setting_param)) return e;
      continue;
    }
    return unsupported_error(
        "reasoning summaries are not offered; a model that reasons returns its reasoning as a "
        "reasoning item",
        setting_param);
  }
  return {};
}

// `include`: of the additional output data, the output text's log probabilities are offered (the
// Responses parser reads them).
Error include(const json& value, const std::string& param) {
  if (!value.is_array()) return request_error("'" + param + "' must be an array", param);
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string item_param = param + "[" + std::to_string(i) + "]";
    if (!value[i].is_string()) {
      return request_error("'" + item_param + "' must be a string", item_param);
    }
    if (value[i] != "message.output_text.logprobs") {
      return unsupported_error(
          "of the additional output data, only 'message.output_text.logprobs' is "
          "offered ('" +
              quote_excerpt(value[i].get<std::string>()) + "')",
          item_param);
    }
  }
  return {};
}

Error truncation(const json& value, const std::string& param) {
  if (value == "disabled" || value == "auto") return {};
  return request_error("'" + param + "' must be 'disabled' or 'auto'", param);
}

// Bounds calls to built-in tools, of which none run here, so every bound holds.
Error max_tool_calls(const json& value, const std::string& param) {
  if (!value.is_number_integer() || value.get<int64_t>() < 1) {
    return request_error("'" + param + "' must be a positive integer", param);
  }
  return {};
}

Error modalities(const json& value, const std::string& param) {
  if (!value.is_array()) return request_error("'" + param + "' must be an array", param);
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string item_param = param + "[" + std::to_string(i) + "]";
    if (value[i] == "text") continue;
    if (!value[i].is_string()) {
      return request_error("'" + item_param + "' must be a string", item_param);
    }
    return unsupported_error("only text output is offered on this endpoint", item_param);
  }
  return {};
}

// Chat metadata is kept with stored completions, which are not offered.
Error chat_metadata(const json& value, const std::string& param) {
  if (value.is_object() && value.empty()) return {};
  return unsupported_error(
      "metadata is kept with stored chat completions, which are not offered; /v1/responses "
      "stores metadata",
      param);
}

Error parallel_tool_calls(const json& value, const std::string& param) {
  if (!value.is_boolean()) return request_error("'" + param + "' must be a boolean", param);
  return {};
}

constexpr const char* kNoStoredChat =
    "stored chat completions are not offered; /v1/responses stores responses";

const RequestField kResponsesFields[] = {
    {"model", Treatment::PARSED},
    {"input", Treatment::PARSED},
    {"instructions", Treatment::PARSED},
    {"max_output_tokens", Treatment::PARSED},
    {"temperature", Treatment::PARSED},
    {"top_p", Treatment::PARSED},
    {"stream", Treatment::PARSED},
    {"store", Treatment::PARSED},
    {"previous_response_id", Treatment::PARSED},
    {"metadata", Treatment::PARSED},
    {"text", Treatment::PARSED},
    {"tools", Treatment::PARSED},
    {"tool_choice", Treatment::PARSED},
    {"parallel_tool_calls", Treatment::CHECKED, nullptr, parallel_tool_calls},
    {"stream_options", Treatment::CHECKED, nullptr, responses_stream_options},
    {"user", Treatment::CHECKED, nullptr, end_user},
    {"safety_identifier", Treatment::CHECKED, nullptr, end_user},
    {"prompt_cache_key", Treatment::CHECKED, nullptr, cache_key},
    {"prompt_cache_retention", Treatment::CHECKED, nullptr, cache_retention},
    {"service_tier", Treatment::CHECKED, nullptr, service_tier},
    {"max_tool_calls", Treatment::CHECKED, nullptr, max_tool_calls},
    {"reasoning", Treatment::CHECKED, nullptr, reasoning},
    {"include", Treatment::CHECKED, nullptr, include},
    {"truncation", Treatment::CHECKED, nullptr, truncation},
    {"top_logprobs", Treatment::PARSED},
    {"background", Treatment::PARSED},
    {"conversation", Treatment::REFUSED,
     "conversation objects are not offered; continue a conversation with previous_response_id"},
    {"prompt", Treatment::REFUSED,
     "reusable prompt templates are not offered; send instructions and input"},
};

// `logit_bias` {token id: bias}: no bias is offered, so only an empty map is accepted.
Error no_logit_bias(const json& value, const std::string& param) {
  if (value.is_object() && value.empty()) return {};
  return unsupported_error("logit_bias is not offered", param);
}

// What Chat Completions and (legacy) Completions both take.
const RequestField kOpenAiSamplingFields[] = {
    {"model", Treatment::PARSED},
    {"max_tokens", Treatment::PARSED},
    {"temperature", Treatment::PARSED},
    {"top_p", Treatment::PARSED},
    {"top_k", Treatment::PARSED},  // extension (llama.cpp's samplers)
    {"min_p", Treatment::PARSED},  // extension
    {"presence_penalty", Treatment::PARSED},
    {"frequency_penalty", Treatment::PARSED},
    {"seed", Treatment::PARSED},
    {"stop", Treatment::PARSED},
    {"n", Treatment::PARSED},
    {"stream", Treatment::PARSED},
    {"logprobs", Treatment::PARSED},
    {"stream_options", Treatment::CHECKED, nullptr, chat_stream_options},
    {"user", Treatment::CHECKED, nullptr, end_user},
    {"logit_bias", Treatment::CHECKED, nullptr, no_logit_bias},
};

const RequestField kChatOnlyFields[] = {
    {"messages", Treatment::PARSED},
    {"max_completion_tokens", Treatment::PARSED},
    {"top_logprobs", Treatment::PARSED},
    {"response_format", Treatment::PARSED},
    {"tools", Treatment::PARSED},
    {"tool_choice", Treatment::PARSED},
    {"parallel_tool_calls", Treatment::CHECKED, nullptr, parallel_tool_calls},
    {"safety_identifier", Treatment::CHECKED, nullptr, end_user},
    {"prompt_cache_key", Treatment::CHECKED, nullptr, cache_key},
    {"prompt_cache_retention", Treatment::CHECKED, nullptr, cache_retention},
    {"service_tier", Treatment::CHECKED, nullptr, service_tier},
    {"modalities", Treatment::CHECKED, nullptr, modalities},
    {"metadata", Treatment::CHECKED, nullptr, chat_metadata},
    {"store", Treatment::UNLESS_FALSE, kNoStoredChat},
    {"reasoning_effort", Treatment::CHECKED, nullptr, reasoning_effort},
    {"verbosity", Treatment::REFUSED, "verbosity settings are not offered"},
    {"audio", Treatment::REFUSED, "audio output is not offered; use /v1/audio/transcriptions"},
    {"prediction", Treatment::REFUSED, "predicted outputs are not offered"},
    {"web_search_options", Treatment::REFUSED, "web search is not offered"},
    {"functions", Treatment::REFUSED, "'functions' is deprecated; send 'tools'"},
    {"function_call", Treatment::REFUSED, "'function_call' is deprecated; send 'tool_choice'"},
};

const RequestField kCompletionsOnlyFields[] = {
    {"prompt", Treatment::PARSED},
    {"suffix", Treatment::PARSED},
    {"best_of", Treatment::PARSED},
    {"echo", Treatment::PARSED},
};

// Anthropic's service tiers: this server has one, which either setting gets.
Error anthropic_service_tier(const json& value, const std::string& param) {
  if (value == "auto" || value == "standard_only") return {};
  return request_error("'" + param + "' must be 'auto' or 'standard_only'", param);
}

// What Messages and its token count both take.
const RequestField kMessagesPromptFields[] = {
    {"model", Treatment::PARSED},
    {"messages", Treatment::PARSED},
    {"system", Treatment::PARSED},
    {"tools", Treatment::PARSED},
    {"tool_choice", Treatment::PARSED},
    {"thinking", Treatment::PARSED},
    {"mcp_servers", Treatment::REFUSED, "MCP servers are not offered; send client tools"},
};

const RequestField kMessagesOnlyFields[] = {
    {"max_tokens", Treatment::PARSED},
    {"stop_sequences", Treatment::PARSED},
    {"temperature", Treatment::PARSED},
    {"top_p", Treatment::PARSED},
    {"top_k", Treatment::PARSED},
    {"metadata", Treatment::PARSED},
    {"stream", Treatment::PARSED},
    {"service_tier", Treatment::CHECKED, nullptr, anthropic_service_tier},
    {"container", Treatment::REFUSED, "code execution containers are not offered"},
    {"context_management", Treatment::REFUSED, "context management is not offered"},
};

// Image options of OpenAI's GPT image models: what holds for the PNGs made here passes.
Error image_background(const json& value, const std::string& param) {
  if (value == "auto" || value == "opaque") return {};
  if (!value.is_string()) return request_error("'" + param + "' must be a string", param);
  return unsupported_error("the images made here are opaque; use 'auto' or 'opaque'", param);
}

Error image_output_format(const json& value, const std::string& param) {
  if (value == "png") return {};
  if (!value.is_string()) return request_error("'" + param + "' must be a string", param);
  return unsupported_error("the images made here are PNG; use 'png'", param);
}

Error image_quality(const json& value, const std::string& param) {
  if (value == "auto" || value == "standard") return {};
  if (!value.is_string()) return request_error("'" + param + "' must be a string", param);
  return unsupported_error(
      "quality settings are not offered; use 'auto' (more 'steps' refine more)", param);
}

// No moderation runs here, which is at most as strict as either setting.
Error image_moderation(const json& value, const std::string& param) {
  if (value == "auto" || value == "low") return {};
  return request_error("'" + param + "' must be 'auto' or 'low'", param);
}

Error no_partial_images(const json& value, const std::string& param) {
  if (value == 0) return {};
  if (!value.is_number_integer()) return request_error("'" + param + "' must be an integer", param);
  return unsupported_error("partial images are not streamed; use 0", param);
}

const RequestField kImageFields[] = {
    {"model", Treatment::PARSED},
    {"prompt", Treatment::PARSED},
    {"n", Treatment::PARSED},
    {"size", Treatment::PARSED},
    {"response_format", Treatment::PARSED},
    {"negative_prompt", Treatment::PARSED},  // extensions from here to sampler
    {"steps", Treatment::PARSED},
    {"cfg_scale", Treatment::PARSED},
    {"seed", Treatment::PARSED},
    {"sampler", Treatment::PARSED},
    {"user", Treatment::CHECKED, nullptr, end_user},
    {"background", Treatment::CHECKED, nullptr, image_background},
    {"output_format", Treatment::CHECKED, nullptr, image_output_format},
    {"quality", Treatment::CHECKED, nullptr, image_quality},
    {"moderation", Treatment::CHECKED, nullptr, image_moderation},
    {"partial_images", Treatment::CHECKED, nullptr, no_partial_images},
    {"output_compression", Treatment::REFUSED,
     "compression applies to JPEG and WebP; the images made here are PNG"},
    {"stream", Treatment::UNLESS_FALSE, "streaming partial images is not offered"},
    {"style", Treatment::REFUSED, "styles are not offered; describe the style in the prompt"},
};

// What edits take besides.
const RequestField kImageEditOnlyFields[] = {
    {"strength", Treatment::PARSED},  // extension
    {"input_fidelity", Treatment::REFUSED,
     "input fidelity settings are not offered; 'strength' sets how far the result may move from "
     "the image"},
};

struct FieldTable {
  const RequestField* fields;
  size_t size;
  template <size_t N>
  FieldTable(const RequestField (&table)[N]) : fields(table), size(N) {}  // NOLINT: implicit
};

const RequestField* find_field(const std::string& name, std::initializer_list<FieldTable> tables) {
  for (const FieldTable& table : tables) {
    for (size_t i = 0; i < table.size; ++i) {
      if (name == table.fields[i].name) return &table.fields[i];
    }
  }
  return nullptr;
}

Error check_fields(const json& body, std::initializer_list<FieldTable> tables) {
  for (const auto& [name, value] : body.items()) {
    const RequestField* field = find_field(name, tables);
    if (!field) {
      return request_error("unknown parameter '" + quote_excerpt(name) + "'", name,
                           "unknown_parameter");
    }
    if (value.is_null() || field->treatment == Treatment::PARSED) continue;
    if (field->treatment == Treatment::CHECKED) {
      if (Error e = field->check(value, name)) return e;
      continue;
    }
    if (field->treatment == Treatment::UNLESS_FALSE && value == false) continue;
    return unsupported_error(field->reason, name);
  }
  return {};
}

}  // namespace

Error check_responses_fields(const json& body) {
  return check_fields(body, {kResponsesFields});
}

Error check_chat_fields(const json& body) {
  return check_fields(body, {kOpenAiSamplingFields, kChatOnlyFields});
}

Error check_image_fields(const json& body) {
  return check_fields(body, {kImageFields});
}

Error check_image_edit_fields(const json& body) {
  return check_fields(body, {kImageFields, kImageEditOnlyFields});
}

Error check_completions_fields(const json& body) {
  return check_fields(body, {kOpenAiSamplingFields, kCompletionsOnlyFields});
}

Error check_messages_fields(const json& body) {
  return check_fields(body, {kMessagesPromptFields, kMessagesOnlyFields});
}

Error check_count_tokens_fields(const json& body) {
  return check_fields(body, {kMessagesPromptFields});
}

void read_sampling(ParamReader& params, SamplingParams* sampling) {
  auto temperature = params.number("temperature", 0.0, 2.0);
  auto top_p = params.number("top_p", 0.0, 1.0);
  auto top_k = params.integer("top_k", 0, 1 << 20);
  auto min_p = params.number("min_p", 0.0, 1.0);
  auto presence = params.number("presence_penalty", -2.0, 2.0);
  auto frequency = params.number("frequency_penalty", -2.0, 2.0);
  auto seed = params.integer("seed", INT64_MIN, INT64_MAX);
  sampling->temperature = static_cast<float>(temperature.value_or(1.0));
  sampling->top_p = static_cast<float>(top_p.value_or(1.0));
  sampling->top_k = static_cast<int>(top_k.value_or(0));
  sampling->min_p = static_cast<float>(min_p.value_or(0.0));
  sampling->presence_penalty = static_cast<float>(presence.value_or(0.0));
  sampling->frequency_penalty = static_cast<float>(frequency.value_or(0.0));
  // Every signed 64-bit seed is its own random stream; negative ones are not special.
  if (seed) sampling->seed = static_cast<uint64_t>(*seed);
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

}  // namespace allm
