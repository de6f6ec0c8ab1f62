// The subcommands of `allm`, and the exit statuses they share.
#pragma once

#include <vector>

namespace allm {

// Exit statuses scripts can tell apart (README, "Command line").
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;        // the command ran and failed (the message says why)
constexpr int kExitUsage = 2;          // bad command line
constexpr int kExitUnreachable = 3;    // no server answered at the address
constexpr int kExitInterrupted = 130;  // Ctrl-C stopped a one-shot `allm run` (128 + SIGINT)

struct Command {
  const char* name;
  const char* summary;                // one line for `allm --help`
  int (*run)(int argc, char** argv);  // argv starts after the command's name
};

// Every command, in the order `allm --help` lists them.
const std::vector<Command>& commands();

int run_serve(int argc, char** argv);
int run_ps(int argc, char** argv);
int run_rpc_server(int argc, char** argv);
int run_chat(int argc, char** argv);  // allm run
// Hub models (cli/pull.cpp, cli/model_commands.cpp).
int run_pull(int argc, char** argv);
int run_ls(int argc, char** argv);
int run_show(int argc, char** argv);
int run_rm(int argc, char** argv);

}  // namespace allm
