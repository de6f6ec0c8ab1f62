#include "cli/client_options.h"

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <vector>

#include "cli/chat_input.h"

namespace allm {

std::string ServerAddress::url() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return "http://" + (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

namespace {

struct ClientOption {
  const char* flag;
  const char* value_name;  // "": a switch
  const char* help;
  // Applies one value; returns a problem or "".
  std::function<std::string(const std::string&)> apply;
  // The environment variable giving the default, as for allm serve (nullptr: none); for a
  // comma-separated list there (ALLM_API_KEY), its first item.
  const char* env = nullptr;
};

bool parse_integer(const std::string& text, long long lo, long long hi, long long* out) {
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno == ERANGE || v < lo || v > hi) return false;
  *out = v;
  return true;
}

// A switch (no value) that sets *target.
ClientOption switch_option(const char* flag, const char* help, bool* target) {
  return {flag, "", help, [target](const std::string&) {
            *target = true;
            return std::string();
          }};
}

// An option whose value is kept as given.
ClientOption text_option(const char* flag, const char* value_name, const char* help,
                         std::string* target, const char* env = nullptr) {
  return {flag, value_name, help,
          [target](const std::string& v) {
            *target = v;
            return std::string();
          },
          env};
}

std::string set_port(const std::string& value, int* port) {
  long long v = 0;
  if (!parse_integer(value, 1, 65535, &v))
    return "expected a port in [1, 65535], got '" + value + "'";
  *port = static_cast<int>(v);
  return "";
}

// The address options every client command has, read from allm serve's environment variables
// first.
std::vector<ClientOption> address_options(ServerAddress* server) {
  return {
      text_option("--host", "ADDR", "the server's address (default 127.0.0.1)", &server->host,
                  "ALLM_HOST"),
      {"--port", "N", "the server's port (default 8080)",
       [server](const std::string& v) { return set_port(v, &server->port); }, "ALLM_PORT"},
      {"--api-key", "KEY", "the key the server was started with (its --api-key)",
       [server](const std::string& v) {
         server->api_key = v;
         return v.empty() ? std::string("the key is empty") : std::string();
       },
       "ALLM_API_KEY"},
  };
}

// The environment's defaults: false with a problem naming the variable.
bool apply_environment(const std::vector<ClientOption>& table, std::string* problem) {
  for (const ClientOption& option : table) {
    const char* value = option.env ? std::getenv(option.env) : nullptr;
    if (!value || !*value) continue;
    const std::string text = value;
    if (std::string error = option.apply(text.substr(0, text.find(','))); !error.empty()) {
      *problem = std::string(option.env) + ": " + error;
      return false;
    }
  }
  return true;
}

// Flags (`--flag VALUE`, `--flag=VALUE`, switches) and positional arguments (all of them after
// `--`). False with a problem; true with *show_help set at --help.
bool parse_args(const std::vector<ClientOption>& table, const char* command, int argc, char** argv,
                std::vector<std::string>* positionals, std::string* problem, bool* show_help) {
  *show_help = false;
  if (!apply_environment(table, problem)) return false;
  bool options_end = false;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (options_end || arg.empty() || arg[0] != '-' || arg == "-") {
      positionals->push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_end = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      *show_help = true;
      return true;
    }
    std::optional<std::string> inline_value;
    if (const size_t eq = arg.find('='); eq != std::string::npos) {
      inline_value = arg.substr(eq + 1);
      arg.resize(eq);
    }
    const ClientOption* match = nullptr;
    for (const ClientOption& option : table) {
      if (arg == option.flag) match = &option;
    }
    if (!match) {
      *problem = "unknown option '" + arg + "' (see allm " + command + " --help)";
      return false;
    }
    std::string value;
    if (!*match->value_name) {
      if (inline_value) {
        *problem = arg + " takes no value";
        return false;
      }
    } else if (inline_value) {
      value = *inline_value;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      *problem = arg + " needs a value";
      return false;
    }
    if (std::string error = match->apply(value); !error.empty()) {
      *problem = arg + ": " + error;
      return false;
    }
  }
  return true;
}

// parse_args for a command taking exactly `count` positional arguments (`expected` names them
// in the message otherwise).
bool parse_args_exactly(const std::vector<ClientOption>& table, const char* command, int argc,
                        char** argv, size_t count, const char* expected,
                        std::vector<std::string>* positionals, std::string* problem,
                        bool* show_help) {
  if (!parse_args(table, command, argc, argv, positionals, problem, show_help)) return false;
  if (*show_help || positionals->size() == count) return true;
  *problem = positionals->size() > count ? "unexpected argument '" + (*positionals)[count] + "'"
                                         : std::string("expected ") + expected;
  *problem += std::string(" (see allm ") + command + " --help)";
  return false;
}

std::string options_help(const std::vector<ClientOption>& table) {
  std::string out = "options:\n";
  for (const ClientOption& option : table) {
    std::string left = std::string("  ") + option.flag;
    if (*option.value_name) left += std::string(" ") + option.value_name;
    out += left + "\n      " + option.help;
    out += option.env ? std::string("  [") + option.env + "]\n" : "\n";
  }
  return out + "  --help\n      print this help\n";
}

std::vector<ClientOption> ps_table(PsOptions* options) {
  std::vector<ClientOption> table = address_options(&options->server);
  table.push_back(switch_option("--json",
                                "print the server's JSON (GET /v1/admin/models) instead of a table",
                                &options->json));
  return table;
}

std::vector<ClientOption> run_table(RunOptions* options) {
  std::vector<ClientOption> table = address_options(&options->server);
  table.push_back(text_option(
      "--system", "TEXT", "a system message at the start of the conversation", &options->system));
  table.push_back({"--temperature", "T", "sampling temperature, 0 to 2 (default: the server's)",
                   [options](const std::string& v) {
                     char* end = nullptr;
                     const double t = std::strtod(v.c_str(), &end);
                     if (v.empty() || *end != '\0' || !(t >= 0 && t <= 2))
                       return "expected a number in [0, 2], got '" + v + "'";
                     options->temperature = t;
                     return std::string();
                   }});
  table.push_back({"--max-tokens", "N", "longest answer in tokens (default: up to the context)",
                   [options](const std::string& v) {
                     long long n = 0;
                     if (!parse_integer(v, 1, 1 << 24, &n))
                       return "expected an integer in [1, 16777216], got '" + v + "'";
                     options->max_tokens = static_cast<int>(n);
                     return std::string();
                   }});
  table.push_back({"--seed", "N", "random seed: the same seed and prompt give the same answer",
                   [options](const std::string& v) {
                     long long n = 0;
                     if (!parse_integer(v, INT64_MIN, INT64_MAX, &n))
                       return "expected a 64-bit integer, got '" + v + "'";
                     options->seed = n;
                     return std::string();
                   }});
  table.push_back(switch_option(
      "--verbose", "print each request on stderr, and the log of a server started in this process",
      &options->verbose));
  return table;
}

std::vector<ClientOption> rpc_server_table(RpcServerOptions* options) {
  return {
      text_option("--host", "ADDR",
                  "the address to listen on (default 127.0.0.1; another exposes the devices to "
                  "whoever reaches it: private networks only)",
                  &options->host),
      {"--port", "N", "the port to listen on (default 50052)",
       [options](const std::string& v) { return set_port(v, &options->port); }},
      {"--threads", "N", "CPU threads when serving the CPU (default: one per physical core)",
       [options](const std::string& v) {
         long long n = 0;
         if (!parse_integer(v, 1, 1024, &n))
           return "expected an integer in [1, 1024], got '" + v + "'";
         options->threads = static_cast<int>(n);
         return std::string();
       }},
      text_option("--device", "NAME[,NAME...]",
                  "the ggml devices to serve (e.g. CUDA0,CUDA1; default: every GPU, else the "
                  "CPU; none: the CPU)",
                  &options->device),
  };
}

}  // namespace

bool parse_rpc_server_options(int argc, char** argv, RpcServerOptions* options,
                              std::string* problem, bool* show_help) {
  std::vector<std::string> positionals;
  return parse_args_exactly(rpc_server_table(options), "rpc-server", argc, argv, 0, "no arguments",
                            &positionals, problem, show_help);
}

std::string rpc_server_help() {
  RpcServerOptions unused;
  return "usage: allm rpc-server [options]\n\n"
         "Serves this machine's devices over ggml's RPC protocol to `allm serve --rpc HOST:PORT`\n"
         "(or llama.cpp's --rpc) on another machine, which places model layers on them as on its\n"
         "own GPUs. RPC has no authentication or encryption: run it on a private network only.\n"
         "It serves until stopped.\n\n" +
         options_help(rpc_server_table(&unused)) +
         "\nexit status: 1 it cannot listen at the address, 2 bad command line\n";
}

bool parse_ps_options(int argc, char** argv, PsOptions* options, std::string* problem,
                      bool* show_help) {
  std::vector<std::string> positionals;
  return parse_args_exactly(ps_table(options), "ps", argc, argv, 0, "no arguments", &positionals,
                            problem, show_help);
}

bool parse_run_options(int argc, char** argv, RunOptions* options, std::string* problem,
                       bool* show_help) {
  std::vector<std::string> positionals;
  if (!parse_args(run_table(options), "run", argc, argv, &positionals, problem, show_help))
    return false;
  if (*show_help) return true;
  if (positionals.empty() || positionals.size() > 2) {
    *problem = positionals.empty() ? "which model? allm run ID [PROMPT] (see allm run --help)"
                                   : "unexpected argument '" + positionals[2] +
                                         "' (quote the prompt: allm run ID \"PROMPT\")";
    return false;
  }
  options->model = positionals[0];
  if (positionals.size() == 2) options->prompt = positionals[1];
  return true;
}

std::string ps_help() {
  PsOptions unused;
  return "usage: allm ps [options]\n\n"
         "Lists the models a running server has loaded: their modality, memory (RAM and GPU),\n"
         "requests running and queued, idle time and when --keep-alive unloads them.\n\n" +
         options_help(ps_table(&unused)) +
         "\nexit status: 0 listed, 1 the server refused (e.g. a wrong API key), 2 bad command\n"
         "line, 3 no server answers at the address\n";
}

std::string run_help() {
  RunOptions unused;
  return "usage: allm run [options] ID [PROMPT]\n\n"
         "Chats with model ID through a running server (POST /v1/chat/completions, streamed).\n"
         "When no server answers at the address, one is started in this process on a free\n"
         "loopback port (the models dir, ALLM_* settings and demo models as allm serve) and\n"
         "stopped at exit. ID may also be NAME=PATH[:gguf|:safetensors[:QUANT]] (as allm serve\n"
         "--model), which is always served in this process.\n\n"
         "With PROMPT, or without it when stdin is not a terminal (the prompt is all of stdin),\n"
         "one answer is streamed to stdout. Otherwise an interactive chat:\n" +
         std::string(kChatCommandsHelp) + "\n" + options_help(run_table(&unused)) +
         "\nexit status: 0 done, 1 failed (the message says why), 2 bad command line,\n"
         "130 Ctrl-C stopped a one-prompt answer\n";
}

namespace {

// `allm pull` and `allm rm`: one REPO[@REVISION][:QUANT] and no options.
bool parse_repo_command_options(const char* command, int argc, char** argv,
                                RepoCommandOptions* options, std::string* problem,
                                bool* show_help) {
  std::vector<std::string> positionals;
  if (!parse_args_exactly({}, command, argc, argv, 1, "one ORG/NAME[@REVISION][:QUANT]",
                          &positionals, problem, show_help)) {
    return false;
  }
  if (*show_help) return true;
  options->argument = positionals[0];
  std::optional<RepoSpec> spec = parse_repo_spec(positionals[0], problem);
  if (!spec) {
    *problem += std::string(" (see allm ") + command + " --help)";
    return false;
  }
  options->spec = *spec;
  return true;
}

}  // namespace

bool parse_pull_options(int argc, char** argv, RepoCommandOptions* options, std::string* problem,
                        bool* show_help) {
  return parse_repo_command_options("pull", argc, argv, options, problem, show_help);
}

bool parse_rm_options(int argc, char** argv, RepoCommandOptions* options, std::string* problem,
                      bool* show_help) {
  return parse_repo_command_options("rm", argc, argv, options, problem, show_help);
}

bool parse_show_options(int argc, char** argv, ShowOptions* options, std::string* problem,
                        bool* show_help) {
  std::vector<std::string> positionals;
  if (!parse_args_exactly({}, "show", argc, argv, 1, "one model ID", &positionals, problem,
                          show_help)) {
    return false;
  }
  if (!*show_help) options->id = positionals[0];
  return true;
}

bool parse_ls_options(int argc, char** argv, LsOptions*, std::string* problem, bool* show_help) {
  std::vector<std::string> positionals;
  return parse_args_exactly({}, "ls", argc, argv, 0, "no arguments", &positionals, problem,
                            show_help);
}

std::string pull_help() {
  return "usage: allm pull REPO[@REVISION][:QUANT]\n\n"
         "Downloads a model from the Hugging Face Hub into the shared Hub cache (the one the "
         "Python\n"
         "tools use), only the files it needs, verified against the Hub's sha256 and resumable.\n\n"
         "  allm pull Qwen/Qwen3-0.6B                              a safetensors folder\n"
         "  allm pull bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M  one GGUF file, by quant tag\n"
         "  allm pull ggerganov/whisper.cpp:base.en                one whisper.cpp model\n"
         "  allm pull ORG/NAME@v1.0                                a branch, tag or commit\n\n"
         "Without :QUANT a GGUF repo gives its Q4_K_M file, else Q8_0, else its first.\n\n"
         "environment:\n"
         "  HF_TOKEN        token for gated or private repos (else $HF_HOME/token, as written by\n"
         "                  `huggingface-cli login`)\n"
         "  HF_HOME         Hub tools' folder (default ~/.cache/huggingface)\n"
         "  HF_HUB_CACHE    the cache (default $HF_HOME/hub)\n"
         "  HF_ENDPOINT     the Hub or a mirror (default https://huggingface.co)\n"
         "  HF_HUB_OFFLINE  1: no network; succeed only when the model is in the cache\n\n"
         "exit status: 0 pulled, 1 failed, 2 bad command line\n";
}

std::string rm_help() {
  return "usage: allm rm ORG/NAME[@REVISION][:QUANT]\n\n"
         "Removes a pulled model from the Hugging Face Hub cache: its snapshot (or, with :QUANT,\n"
         "that file of it) and the blobs no other snapshot uses. Models in the models dir are\n"
         "yours to delete.\n\n"
         "exit status: 0 removed, 1 not in the cache or not removable, 2 bad command line\n";
}

std::string show_model_help() {
  return "usage: allm show ID\n\n"
         "Describes a model of `allm ls`: format, architecture, context length, chat template\n"
         "(and whether it takes tools), files.\n\n"
         "exit status: 0 shown, 1 no such model, 2 bad command line\n";
}

std::string ls_help() {
  return "usage: allm ls\n\n"
         "Lists the models `allm serve` would serve: the models dir ($ALLM_MODELS_DIR, default\n"
         "~/.allm/models) and the Hugging Face Hub cache ($HF_HUB_CACHE, default\n"
         "~/.cache/huggingface/hub).\n\n"
         "exit status: 0 listed, 2 bad command line\n";
}

}  // namespace allm
