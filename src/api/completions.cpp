// POST /v1/completions (OpenAI's legacy completions): prompts as they are, no chat template.
#include <algorithm>

#include "api/access_log.h"
#include "api/http_util.h"
#include "api/model_advice.h"
#include "api/request_fields.h"
#include "api/request_parsing.h"
#include "api/routes.h"
#include "base/random_id.h"
#include "core/text_manager.h"
#include "text/utf8.h"

namespace allm {

namespace {

// Choices one request may ask for (prompts × n): each is a generation of its own.
constexpr int64_t kMaxChoices = 128;
// OpenAI's default output limit for this endpoint.
constexpr int kDefaultMaxTokens = 16;

struct CompletionCall {
  std::vector<TextRequest> choices;  // prompt i's generations: choices[i*best_of ...]
  int n = 1;
  int best_of = 1;  // generations per prompt, of which the n likeliest are returned
  bool stream = false;
  bool include_usage = false;
  bool echo = false;
  int logprobs = -1;  // -1: none; else the number of top alternatives per token
  std::string id = random_id("cmpl-");
  int64_t created = unix_time();
};

bool is_token_array(const json& value) {
  if (!value.is_array() || value.empty()) return false;
  for (const json& item : value) {
    if (!item.is_number_integer()) return false;
  }
  return true;
}

RawPrompt token_prompt(const json& tokens) {
  RawPrompt prompt;
  for (const json& token : tokens) {
    const int64_t id = token.get<int64_t>();
    // Out of range ids are refused by the model, which knows its vocabulary; clamping keeps them
    // out of range.
    prompt.tokens.push_back(static_cast<Token>(std::clamp<int64_t>(id, -1, INT32_MAX)));
  }
  return prompt;
}

// `prompt`: a string, an array of strings, an array of token ids, or an array of those.
Error read_prompts(const json& body, std::vector<RawPrompt>* prompts) {
  if (!body.contains("prompt") || body["prompt"].is_null()) {
    return request_error("missing required parameter 'prompt'", "prompt");
  }
  const json& value = body["prompt"];
  if (value.is_string()) {
    prompts->push_back({value.get<std::string>(), {}, ""});
    return {};
  }
  if (is_token_array(value)) {
    prompts->push_back(token_prompt(value));
    return {};
  }
  const char* shape =
      "'prompt' must be a string, an array of strings, an array of token ids or an array of "
      "arrays of token ids";
  if (!value.is_array() || value.empty()) return request_error(shape, "prompt");
  for (const json& item : value) {
    if (item.is_string()) {
      prompts->push_back({item.get<std::string>(), {}, ""});
    } else if (is_token_array(item)) {
      prompts->push_back(token_prompt(item));
    } else {
      return request_error(shape, "prompt");
    }
  }
  return {};
}

Error read_call(const json& body, CompletionCall* call) {
  if (Error e = check_completions_fields(body)) return e;
  ParamReader params(body);
  TextRequest request;
  auto model = params.string("model", true);
  auto max_tokens = params.integer("max_tokens", 1, 1 << 24);
  read_sampling(params, &request.sampling);
  auto n = params.integer("n", 1, kMaxChoices);
  auto best_of = params.integer("best_of", 1, kMaxChoices);
  auto stream = params.boolean("stream");
  auto logprobs = params.integer("logprobs", 0, 5);
  auto echo = params.boolean("echo");
  auto suffix = params.string("suffix");
  if (params.has("stream_options")) {
    call->include_usage = body["stream_options"].value("include_usage", false);
  }
  if (params.error) return params.error;
  call->n = static_cast<int>(n.value_or(1));
  call->best_of = static_cast<int>(best_of.value_or(call->n));
  call->echo = echo.value_or(false);
  call->logprobs = logprobs ? static_cast<int>(*logprobs) : -1;
  call->stream = stream.value_or(false);
  if (call->best_of < call->n) return request_error("'best_of' must be at least 'n'", "best_of");
  if (call->best_of > call->n && call->stream) {
    return request_error("'best_of' above 'n' cannot be streamed: the best are known at the end",
                         "best_of");
  }
  std::vector<RawPrompt> prompts;
  if (Error e = read_prompts(body, &prompts)) return e;
  if (suffix && !suffix->empty()) {
    if (call->echo) return request_error("'echo' cannot be used with 'suffix'", "echo");
    for (RawPrompt& prompt : prompts) {
      if (!prompt.tokens.empty()) {
        return request_error("a 'suffix' needs text prompts, not token ids", "suffix");
      }
      prompt.suffix = *suffix;
    }
  }
  if (static_cast<int64_t>(prompts.size()) * call->best_of > kMaxChoices) {
    return request_error("prompts × best_of (n) may be at most " + std::to_string(kMaxChoices),
                         call->best_of > call->n ? "best_of" : "n");
  }
  if (Error e = read_stop(body, &request.stop)) return e;
  request.model = *model;
  request.prompt_param = "prompt";
  request.max_tokens = static_cast<int>(max_tokens.value_or(kDefaultMaxTokens));
  // The best of several generations are those with the highest log probability per token.
  request.top_logprobs = call->best_of > call->n ? std::max(call->logprobs, 0) : call->logprobs;
  request.prompt_logprobs = call->echo && call->logprobs >= 0;
  for (RawPrompt& prompt : prompts) {
    for (int j = 0; j < call->best_of; ++j) {
      TextRequest choice = request;
      choice.raw_prompt = prompt;
      // One seed gives each of a prompt's generations a stream of its own (seed + j).
      if (request.sampling.seed) choice.sampling.seed = *request.sampling.seed + j;
      call->choices.push_back(std::move(choice));
    }
  }
  return {};
}

const char* finish_reason(const TextEvent& done) {
  return done.finish == FinishReason::LENGTH ? "length" : "stop";
}

// Characters (code points) in `text` (valid UTF-8).
int64_t code_points(const std::string& text) {
  int64_t count = 0;
  for (unsigned char c : text) count += (c & 0xC0) != 0x80;
  return count;
}

// The legacy logprobs object: tokens, token_logprobs, top_logprobs ({token: logprob} per token)
// and text_offset (each token's first character in the choice's text).
struct LegacyLogprobs {
  json tokens = json::array();
  json token_logprobs = json::array();
  json top_logprobs = json::array();
  json text_offset = json::array();
  int64_t offset = 0;   // characters of the text before the pending bytes
  std::string pending;  // the start of a character whose other bytes are still to come

  void add(const std::vector<TokenLogprob>& logprobs) {
    for (const TokenLogprob& logprob : logprobs) {
      json top = json::object();
      // Tokens that are parts of characters may show as the same text: the likeliest (the
      // first) keeps it.
      for (const auto& [bytes, value] : logprob.top) top.emplace(sanitize_utf8(bytes), value);
      add_entry(logprob.bytes, logprob.logprob, std::move(top));
    }
  }
  // A prompt's first token: nothing comes before it to give it a probability.
  void add_unscored(const std::string& bytes) { add_entry(bytes, nullptr, nullptr); }
  // The completion's tokens start at `chars` (the echoed prompt's length).
  void start_at(int64_t chars) {
    offset = chars;
    pending.clear();
  }
  // What was added since the last take, as a chunk carries it.
  json take() {
    json out = {{"tokens", std::move(tokens)},
                {"token_logprobs", std::move(token_logprobs)},
                {"top_logprobs", std::move(top_logprobs)},
                {"text_offset", std::move(text_offset)}};
    tokens = token_logprobs = top_logprobs = text_offset = json::array();
    return out;
  }

 private:
  void add_entry(const std::string& bytes, json logprob, json top) {
    // Held bytes of a character this token does not continue are invalid: the text shows them
    // as U+FFFD, and the token starts after them.
    const bool continues = !bytes.empty() && (static_cast<unsigned char>(bytes[0]) & 0xC0) == 0x80;
    if (!continues) {
      offset += code_points(sanitize_utf8(pending));
      pending.clear();
    }
    tokens.push_back(sanitize_utf8(bytes));
    token_logprobs.push_back(std::move(logprob));
    top_logprobs.push_back(std::move(top));
    text_offset.push_back(offset);
    pending += bytes;
    const size_t whole = pending.size() - incomplete_utf8_tail(pending);
    offset += code_points(sanitize_utf8(pending.substr(0, whole)));
    pending.erase(0, whole);
  }
};

// One choice as its events arrive: its text (the prompt first with echo) and logprobs (the
// prompt's first with echo).
struct ChoiceState {
  LegacyLogprobs logprobs;
  bool started = false;     // the first event was taken
  bool completing = false;  // the completion's own tokens have begun
  double logprob_sum = 0;   // of the completion's tokens (best_of ranks by it)
  int scored = 0;

  // Takes `event` in; returns the text it adds.
  std::string take(const CompletionCall& call, const TextStream& stream, const TextEvent& event) {
    std::string text;
    if (!started && call.echo) {
      text = stream.prompt_text();
      if (call.logprobs >= 0 && !stream.unscored_prompt_token().empty()) {
        logprobs.add_unscored(stream.unscored_prompt_token());
      }
    }
    started = true;
    logprobs.add(event.prompt_logprobs);
    if (!completing && (event.done || !event.delta.empty() || !event.logprobs.empty())) {
      completing = true;
      logprobs.start_at(call.echo ? code_points(stream.prompt_text()) : 0);
    }
    logprobs.add(event.logprobs);
    for (const TokenLogprob& token : event.logprobs) logprob_sum += token.logprob;
    scored += static_cast<int>(event.logprobs.size());
    return text + event.delta.content;
  }
  double logprob_per_token() const { return scored ? logprob_sum / scored : 0.0; }
};

json usage_json(int prompt_tokens, int completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

// Token counts over the choices: each prompt counted once, every choice's output.
struct UsageSum {
  int prompt_tokens = 0;
  int completion_tokens = 0;
  void add(const CompletionCall& call, size_t choice, const TextUsage& usage) {
    if (choice % static_cast<size_t>(call.best_of) == 0) prompt_tokens += usage.prompt_tokens;
    completion_tokens += usage.completion_tokens;
  }
};

json completion_object(const CompletionCall& call, json choices) {
  return {{"id", call.id},
          {"object", "text_completion"},
          {"created", call.created},
          {"model", call.choices.front().model},
          {"system_fingerprint", "allm"},
          {"choices", std::move(choices)}};
}

std::string chunk_line(const CompletionCall& call, json choices) {
  json chunk = completion_object(call, std::move(choices));
  if (call.include_usage) chunk["usage"] = nullptr;
  return sse_data(chunk.dump(-1, ' ', false, json::error_handler_t::replace));
}

bool failed(const TextEvent& event) {
  return event.finish == FinishReason::ERROR || event.finish == FinishReason::CANCELLED;
}

std::vector<TextStream*> stream_pointers(const std::vector<std::shared_ptr<TextStream>>& streams) {
  std::vector<TextStream*> out;
  for (const auto& stream : streams) out.push_back(stream.get());
  return out;
}

// One chunk per event with the choice's new text (the prompt first with echo), a finishing chunk
// per choice, then the usage chunk when asked for and [DONE].
void respond_streaming(const httplib::Request& req, httplib::Response& res,
                       std::shared_ptr<CompletionCall> call,
                       std::vector<std::shared_ptr<TextStream>> streams) {
  auto client_gone = req.is_connection_closed;
  res.set_chunked_content_provider(
      "text/event-stream", [call, streams, client_gone](size_t, httplib::DataSink& sink) {
        std::vector<ChoiceState> choices(streams.size());
        UsageSum usage;
        bool error = false;
        const bool finished = drain_text_streams(
            stream_pointers(streams), client_gone, [&](size_t i, TextEvent& event) {
              if (error) return true;  // an error ended the response; the rest is drained unsent
              std::string out;
              const std::string text = choices[i].take(*call, *streams[i], event);
              json logprobs = call->logprobs >= 0 ? choices[i].logprobs.take() : json(nullptr);
              if (!text.empty() || (!logprobs.is_null() && !logprobs["tokens"].empty())) {
                json choice = {{"text", text},
                               {"index", i},
                               {"logprobs", std::move(logprobs)},
                               {"finish_reason", nullptr}};
                out += chunk_line(*call, json::array({choice}));
              }
              if (event.done && failed(event)) {
                error = true;
                for (const auto& stream : streams) stream->cancel();
                out += sse_data(
                    error_body(event.error).dump(-1, ' ', false, json::error_handler_t::replace));
              } else if (event.done) {
                usage.add(*call, i, event.usage);
                out += chunk_line(*call, json::array({{{"text", ""},
                                                       {"index", i},
                                                       {"logprobs", nullptr},
                                                       {"finish_reason", finish_reason(event)}}}));
              }
              return out.empty() || sink.write(out.data(), out.size());
            });
        if (!finished) return false;
        std::string tail;
        if (call->include_usage && !error) {
          json chunk = completion_object(*call, json::array());
          chunk["usage"] = usage_json(usage.prompt_tokens, usage.completion_tokens);
          tail += sse_data(chunk.dump(-1, ' ', false, json::error_handler_t::replace));
        }
        tail += sse_data("[DONE]");
        if (!sink.write(tail.data(), tail.size())) return false;
        sink.done();
        return true;
      });
}

// The generations returned, in order: of each prompt's best_of, the n with the highest log
// probability per token (all of them, in order, when best_of is n).
std::vector<size_t> returned_choices(const CompletionCall& call,
                                     const std::vector<ChoiceState>& states) {
  std::vector<size_t> out;
  const size_t group = static_cast<size_t>(call.best_of);
  for (size_t first = 0; first < states.size(); first += group) {
    std::vector<size_t> ranked(group);
    for (size_t j = 0; j < group; ++j) ranked[j] = first + j;
    if (call.best_of > call.n) {
      std::stable_sort(ranked.begin(), ranked.end(), [&](size_t a, size_t b) {
        return states[a].logprob_per_token() > states[b].logprob_per_token();
      });
    }
    out.insert(out.end(), ranked.begin(), ranked.begin() + call.n);
  }
  return out;
}

void respond_plain(const httplib::Request& req, httplib::Response& res, const CompletionCall& call,
                   const std::vector<std::shared_ptr<TextStream>>& streams) {
  std::vector<std::string> texts(streams.size());
  std::vector<ChoiceState> states(streams.size());
  std::vector<TextEvent> done(streams.size());
  const bool finished = drain_text_streams(stream_pointers(streams), req.is_connection_closed,
                                           [&](size_t i, TextEvent& event) {
                                             texts[i] += states[i].take(call, *streams[i], event);
                                             if (event.done) done[i] = std::move(event);
                                             return true;
                                           });
  if (!finished) return;
  UsageSum usage;
  for (size_t i = 0; i < streams.size(); ++i) {
    if (failed(done[i])) return send_error(res, done[i].error);
    usage.add(call, i, done[i].usage);
  }
  json choices = json::array();
  for (size_t i : returned_choices(call, states)) {
    choices.push_back({{"text", texts[i]},
                       {"index", choices.size()},
                       {"logprobs", call.logprobs >= 0 ? states[i].logprobs.take() : json(nullptr)},
                       {"finish_reason", finish_reason(done[i])}});
  }
  json body = completion_object(call, std::move(choices));
  body["usage"] = usage_json(usage.prompt_tokens, usage.completion_tokens);
  send_json(res, body);
}

void create_completion(ApiContext& ctx, const httplib::Request& req, httplib::Response& res) {
  json body;
  Error error;
  if (!parse_json_body(req, &body, &error)) return send_error(res, error);
  auto call = std::make_shared<CompletionCall>();
  if ((error = read_call(body, call.get()))) return send_error(res, error);
  // Every choice is queued at once, so that they are generated together.
  std::vector<std::shared_ptr<TextStream>> streams;
  for (TextRequest& request : call->choices) {
    request.received = current_access().started;
    std::shared_ptr<TextStream> stream = ctx.text.start(request, &error);
    if (!stream) {
      return send_error(res,
                        with_endpoint_advice(error, ctx.registry, request.model, Modality::TEXT));
    }
    streams.push_back(std::move(stream));
  }
  if (call->stream) return respond_streaming(req, res, call, std::move(streams));
  respond_plain(req, res, *call, streams);
}

}  // namespace

Error check_completions_request(const json& body) {
  CompletionCall call;
  return read_call(body, &call);
}

void register_completions_routes(httplib::Server& server, ApiContext& ctx) {
  server.Post("/v1/completions", [&ctx](const httplib::Request& req, httplib::Response& res) {
    create_completion(ctx, req, res);
  });
}

}  // namespace allm
