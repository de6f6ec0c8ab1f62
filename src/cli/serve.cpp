// `allm serve`: builds the server from the options and runs it until a signal.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "base/log.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/serve_options.h"
#include "cli/server_instance.h"
#include "cli/signals.h"

namespace allm {

namespace {

// A second signal: exit now, without waiting for anything (a cancelled job may still be unwinding
// a long step or a model load). The status is the shell's for death by that signal.
[[noreturn]] void exit_now(int signal_number) {
  ALLM_LOG_WARN("second signal (%s): exiting now", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  std::_Exit(128 + signal_number);
}

// Stop accepting, let running requests finish within the grace period, then cancel them; a second
// signal at any point exits at once.
void shut_down(ServerInstance& server, const sigset_t& signals, int signal_number,
               int grace_seconds) {
  ALLM_LOG_INFO(
      "%s received: no new connections; running requests may finish within %d s "
      "(--shutdown-grace; a second signal exits at once)",
      signal_number == SIGINT ? "SIGINT" : "SIGTERM", grace_seconds);
  server.stop();
  const auto serving = [&server] { return server.serving(); };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(grace_seconds);
  if (const int again = wait_for_signal(signals, serving, deadline)) exit_now(again);
  if (!server.serving()) return;
  ALLM_LOG_WARN("grace period over: cancelling the requests still running");
  server.cancel_all();
  if (const int again =
          wait_for_signal(signals, serving, std::chrono::steady_clock::time_point::max())) {
    exit_now(again);
  }
}

}  // namespace

int run_serve(int argc, char** argv) {
  ServeOptions options;
  if (const std::optional<int> done =
          parse_command_line("serve", argc, argv, parse_serve_options, serve_help, &options))
    return *done;
  std::signal(SIGPIPE, SIG_IGN);
  // A file-size limit (ulimit -f) fails the write that passes it, which the response store
  // reports, instead of killing the server.
  std::signal(SIGXFSZ, SIG_IGN);
  const sigset_t signals = block_shutdown_signals();
  const int grace_seconds = options.shutdown_grace_seconds;
  std::unique_ptr<ServerInstance> server = ServerInstance::create(std::move(options));
  if (!server || !server->start()) return kExitFailure;
  const int signal_number = wait_for_signal(
      signals, [&server] { return server->serving(); },
      std::chrono::steady_clock::time_point::max());
  if (signal_number) shut_down(*server, signals, signal_number, grace_seconds);
  const bool ok = server->wait();
  ALLM_LOG_INFO("server stopped");
  return ok ? kExitOk : kExitFailure;
}

}  // namespace allm
