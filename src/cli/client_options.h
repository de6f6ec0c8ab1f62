// Command lines of the commands other than `allm serve`. Those that talk to a running server
// (`allm ps`, `allm run`) take its address and API key with the same defaults and environment
// variables as `allm serve`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "hub/repo_spec.h"

namespace allm {

struct ServerAddress {
  std::string host = "127.0.0.1";  // ALLM_HOST
  int port = 8080;                 // ALLM_PORT
  std::string api_key;             // ALLM_API_KEY (its first key)
  std::string url() const;         // http://HOST:PORT
};

struct PsOptions {
  ServerAddress server;
  bool json = false;  // the route's JSON instead of the table
};

struct RunOptions {
  ServerAddress server;
  std::string model;  // an id, or NAME=PATH[:FORMAT[:QUANT]] to serve in this process
  std::optional<std::string> prompt;  // none: from stdin, or the interactive chat on a terminal
  std::string system;
  std::optional<double> temperature;
  std::optional<int> max_tokens;
  std::optional<int64_t> seed;
  bool verbose = false;  // each request body, and an in-process server's log, on stderr
};

// `allm rpc-server`: a ggml RPC worker serving this machine's devices.
struct RpcServerOptions {
  std::string host = "127.0.0.1";  // loopback unless asked: RPC has no authentication
  int port = 50052;                // llama.cpp's rpc-server default
  int threads = 0;                 // CPU threads; 0: one per physical core
  std::string device;              // comma-separated ggml names; "": every GPU, else the CPU
};

// `allm pull REPO` and `allm rm REPO`: one Hugging Face Hub repository.
struct RepoCommandOptions {
  std::string argument;  // as given, for messages
  RepoSpec spec;
};

// `allm show ID`.
struct ShowOptions {
  std::string id;
};

// `allm ls` has no options.
struct LsOptions {};

// Fill the options from the environment, then the command line. False with a message on a bad
// command line; true with *show_help set for --help.
bool parse_ps_options(int argc, char** argv, PsOptions* options, std::string* problem,
                      bool* show_help);
bool parse_run_options(int argc, char** argv, RunOptions* options, std::string* problem,
                       bool* show_help);
bool parse_rpc_server_options(int argc, char** argv, RpcServerOptions* options,
                              std::string* problem, bool* show_help);
bool parse_pull_options(int argc, char** argv, RepoCommandOptions* options, std::string* problem,
                        bool* show_help);
bool parse_rm_options(int argc, char** argv, RepoCommandOptions* options, std::string* problem,
                      bool* show_help);
bool parse_show_options(int argc, char** argv, ShowOptions* options, std::string* problem,
                        bool* show_help);
bool parse_ls_options(int argc, char** argv, LsOptions* options, std::string* problem,
                      bool* show_help);
std::string ls_help();
std::string ps_help();
std::string pull_help();
std::string rm_help();
std::string show_model_help();
std::string rpc_server_help();
std::string run_help();

}  // namespace allm
