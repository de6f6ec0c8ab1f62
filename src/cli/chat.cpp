// `allm run`: a terminal chat, or one answer, streamed from POST /v1/chat/completions.
//
// Chat completions rather than the Responses API: the conversation stays in this process and is
// sent whole each turn, so nothing is stored on the server for a terminal session (the Responses
// API stores by default, and continuing with previous_response_id needs stored responses), /clear
// is local, and `seed` is a chat completions parameter.
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <memory>

#include "base/log.h"
#include "base/random_id.h"
#include "cli/chat_input.h"
#include "cli/client_options.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/interrupts.h"
#include "cli/server_client.h"
#include "cli/server_instance.h"
#include "cli/sse_reader.h"

namespace allm {

namespace {

constexpr const char* kChatPath = "/v1/chat/completions";

// The server the chat talks to: one that answers at the address, or one in this process.
struct ChatServer {
  std::unique_ptr<ServerInstance> in_process;
  std::unique_ptr<ServerClient> client;
  std::string model;
};

// An in-process server for `options.model`: allm serve's settings (defaults, ALLM_* variables,
// demo models) on a free loopback port, one conversation at a time, its log on stderr only with
// --verbose. A random API key keeps other local users out.
bool start_in_process(const RunOptions& options, ChatServer* server) {
  ServeOptions serve;
  std::string problem;
  bool unused_help = false;
  if (!parse_serve_options(0, nullptr, &serve, &problem, &unused_help)) {
    std::fprintf(stderr, "allm run: %s\n", problem.c_str());
    return false;
  }
  server->model = options.model;
  if (options.model.find('=') != std::string::npos) {
    std::optional<ModelEntry> entry = parse_model_spec(options.model, &problem);
    if (!entry) {
      std::fprintf(stderr, "allm run: %s\n", problem.c_str());
      return false;
    }
    server->model = entry->id;
    serve.models.push_back(*entry);
  }
  // Said plainly here rather than as a failed start-up (the demo models come only without any).
  ModelRegistry registry(serve.models_dir, serve.models, serve.quantization);
  if (!registry.empty() && !registry.find(server->model)) {
    std::fprintf(stderr,
                 "allm run: no server answers at %s, and there is no model '%s' in %s (start "
                 "allm serve, or give the model as NAME=PATH)\n",
                 options.server.url().c_str(), server->model.c_str(), serve.models_dir.c_str());
    return false;
  }
  serve.server.host = "127.0.0.1";
  serve.server.port = 0;
  const std::string api_key = random_id("sk-");
  serve.server.api_keys = {api_key};
  serve.text.parallel = 1;
  serve.preload = {server->model};  // a missing or broken model shows before the first prompt
  set_log_level(options.verbose ? LogLevel::INFO : LogLevel::ERROR);
  // A large model takes a while to load: say so on a terminal.
  if (!options.verbose && isatty(STDERR_FILENO))
    std::fprintf(stderr, "loading %s in this process ...\n", server->model.c_str());
  server->in_process = ServerInstance::create(std::move(serve));
  if (!server->in_process || !server->in_process->start()) {
    std::fprintf(stderr, "allm run: cannot serve '%s' in this process (see the message above)\n",
                 options.model.c_str());
    return false;
  }
  server->client = std::make_unique<ServerClient>(
      ServerAddress{"127.0.0.1", server->in_process->port(), api_key});
  return true;
}

// A running server at the address, else (or for a NAME=PATH model) one in this process.
bool connect(const RunOptions& options, ChatServer* server) {
  if (options.model.find('=') == std::string::npos) {
    server->client = std::make_unique<ServerClient>(options.server);
    server->model = options.model;
    if (server->client->reachable()) return true;
    if (options.verbose) {
      std::fprintf(stderr, "allm run: no server answers at %s; serving '%s' in this process\n",
                   options.server.url().c_str(), options.model.c_str());
    }
  }
  return start_in_process(options, server);
}

json chat_request(const RunOptions& options, const std::string& model, const json& messages) {
  json request{{"model", model}, {"messages", messages}, {"stream", true}};
  if (options.temperature) request["temperature"] = *options.temperature;
  if (options.max_tokens) request["max_tokens"] = *options.max_tokens;
  if (options.seed) request["seed"] = *options.seed;
  return request;
}

json message(const char* role, const std::string& content) {
  return json{{"role", role}, {"content", content}};
}

enum class TurnEnd { DONE, STOPPED, FAILED };

struct Turn {
  TurnEnd end = TurnEnd::DONE;
  std::string answer;
  ClientFailure failure;
};

// Writes `text` to stdout at once; false when stdout is gone (a closed pipe).
bool write_out(std::string_view text) {
  return std::fwrite(text.data(), 1, text.size(), stdout) == text.size() &&
         std::fflush(stdout) == 0;
}

// The pieces of one chat completion chunk: content to stdout (and collected), reasoning dimmed on
// a terminal; an error chunk ends the turn.
bool show_chunk(const std::string& data, bool terminal, Turn* turn) {
  if (data == "[DONE]") return true;
  const json chunk = json::parse(data, nullptr, false);
  if (chunk.is_object() && chunk.contains("error")) {
    const json& error = chunk["error"];
    turn->failure = {kExitFailure, "the answer failed: " + text_member(error, "message", "")};
    turn->end = TurnEnd::FAILED;
    return false;
  }
  if (!chunk.is_object() || !chunk.contains("choices") || !chunk["choices"].is_array() ||
      chunk["choices"].empty()) {
    return true;  // the usage chunk, or nothing to show
  }
  const json& choice = chunk["choices"][0];
  const json& delta = choice.contains("delta") ? choice["delta"] : json();
  const std::string reasoning = text_member(delta, "reasoning_content", "");
  const std::string content = text_member(delta, "content", "");
  bool written = true;
  if (terminal && !reasoning.empty()) written = write_out("\033[2m" + reasoning + "\033[0m");
  if (!content.empty()) {
    turn->answer += content;
    written = written && write_out(content);
  }
  if (!written) {
    turn->failure = {kExitFailure, std::string("cannot write the answer: ") + std::strerror(errno)};
    turn->end = TurnEnd::FAILED;
  }
  return written;
}

// Streams one answer to stdout; Ctrl-C stops it.
Turn stream_answer(ChatServer& server, Interrupts& interrupts, const json& request, bool verbose) {
  if (verbose) std::fprintf(stderr, "POST %s %s\n", kChatPath, request.dump().c_str());
  const bool terminal = isatty(STDOUT_FILENO);
  Turn turn;
  std::atomic<bool> stopped{false};
  interrupts.take();
  interrupts.set_stopper([&] {
    stopped = true;
    server.client->stop();
  });
  SseReader sse;
  const bool ok = server.client->post_streaming(
      kChatPath, request,
      [&](std::string_view bytes) {
        for (const std::string& data : sse.feed(bytes)) {
          if (stopped || !show_chunk(data, terminal, &turn)) return false;
        }
        return !stopped;
      },
      &turn.failure);
  interrupts.clear_stopper();
  if (stopped) {
    turn.end = TurnEnd::STOPPED;
  } else if (!ok) {
    turn.end = TurnEnd::FAILED;
  }
  write_out("\n");
  return turn;
}

// The prompt of a one-answer run: PROMPT, else all of stdin.
std::optional<std::string> one_shot_prompt(const RunOptions& options) {
  if (options.prompt) return options.prompt;
  std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) return std::nullopt;
  return text;
}

int answer_once(const RunOptions& options, ChatServer& server, Interrupts& interrupts) {
  const std::optional<std::string> prompt = one_shot_prompt(options);
  if (!prompt) {
    std::fputs("allm run: no prompt: give PROMPT, or pipe it on stdin\n", stderr);
    return kExitUsage;
  }
  json messages = json::array();
  if (!options.system.empty()) messages.push_back(message("system", options.system));
  messages.push_back(message("user", *prompt));
  const Turn turn = stream_answer(server, interrupts, chat_request(options, server.model, messages),
                                  options.verbose);
  if (turn.end == TurnEnd::FAILED) {
    std::fprintf(stderr, "allm run: %s\n", turn.failure.message.c_str());
    return turn.failure.exit_status;
  }
  if (interrupts.terminated()) return 128 + SIGTERM;
  return turn.end == TurnEnd::STOPPED ? kExitInterrupted : kExitOk;
}

// The interactive chat: the conversation so far goes with each message.
class ChatSession {
 public:
  ChatSession(const RunOptions& options, ChatServer& server, Interrupts& interrupts)
      : options_(options), server_(server), interrupts_(interrupts) {}

  int run() {
    std::printf("Chatting with %s (/? for help, /bye or Ctrl-D to end).\n", server_.model.c_str());
    std::string pending;
    bool interrupted_at_prompt = false;
    for (;;) {
      if (pending.empty()) write_out(input_.in_block() ? "... " : ">>> ");  // not mid-line
      pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {interrupts_.fd(), POLLIN, 0}};
      if (poll(fds, 2, -1) < 0) continue;
      if (fds[1].revents & POLLIN) {
        interrupts_.take();
        if (interrupts_.terminated()) return 128 + SIGTERM;
        if (interrupted_at_prompt) return end_chat();
        interrupted_at_prompt = true;
        input_.reset();
        pending.clear();
        write_out("\n(Ctrl-C again, /bye or Ctrl-D to end the chat)\n");
        continue;
      }
      char buffer[4096];
      const ssize_t n = read(STDIN_FILENO, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return end_chat();  // Ctrl-D
      interrupted_at_prompt = false;
      pending.append(buffer, static_cast<size_t>(n));
      for (const std::string& line : take_lines(&pending)) {
        if (const std::optional<int> status = handle(input_.add_line(line))) return *status;
      }
    }
  }

 private:
  static int end_chat() {
    write_out("\n");
    return kExitOk;
  }

  // What an entry does; an exit status when the chat ends.
  std::optional<int> handle(const ChatInput::Entry& entry) {
    switch (entry.kind) {
      case ChatInput::Kind::NOTHING: return std::nullopt;
      case ChatInput::Kind::BYE: return kExitOk;
      case ChatInput::Kind::CLEAR:
        history_ = json::array();
        write_out("(conversation cleared)\n");
        return std::nullopt;
      case ChatInput::Kind::HELP: write_out(kChatCommandsHelp); return std::nullopt;
      case ChatInput::Kind::UNKNOWN:
        write_out("unknown command " + entry.text + " (/? for help)\n");
        return std::nullopt;
      case ChatInput::Kind::MESSAGE:
        send(entry.text);
        if (interrupts_.terminated()) return 128 + SIGTERM;
        return std::nullopt;
    }
    return std::nullopt;
  }

  // One turn. The conversation keeps what was shown: a stopped answer's text too (without any,
  // the message is dropped, so that two user messages never follow each other).
  void send(const std::string& text) {
    json messages = json::array();
    if (!options_.system.empty()) messages.push_back(message("system", options_.system));
    for (const json& earlier : history_) messages.push_back(earlier);
    messages.push_back(message("user", text));
    const Turn turn = stream_answer(
        server_, interrupts_, chat_request(options_, server_.model, messages), options_.verbose);
    if (turn.end == TurnEnd::FAILED) {
      std::fprintf(stderr, "allm run: %s\n", turn.failure.message.c_str());
      return;
    }
    if (turn.end == TurnEnd::STOPPED && turn.answer.empty()) return;
    history_.push_back(message("user", text));
    history_.push_back(message("assistant", turn.answer));
  }

  const RunOptions& options_;
  ChatServer& server_;
  Interrupts& interrupts_;
  ChatInput input_;
  json history_ = json::array();
};

}  // namespace

int run_chat(int argc, char** argv) {
  RunOptions options;
  if (const std::optional<int> done =
          parse_command_line("run", argc, argv, parse_run_options, run_help, &options))
    return *done;
  std::signal(SIGPIPE, SIG_IGN);
  Interrupts interrupts;  // before any thread starts
  ChatServer server;
  if (!connect(options, &server)) return kExitFailure;
  if (options.prompt || !isatty(STDIN_FILENO)) return answer_once(options, server, interrupts);
  return ChatSession(options, server, interrupts).run();
}

}  // namespace allm
