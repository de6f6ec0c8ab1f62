#include "cli/commands.h"

namespace allm {

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"serve", "run the OpenAI-compatible API server", run_serve},
      {"run", "chat with a model in the terminal, or answer one prompt", run_chat},
      {"ps", "list the models a running server has loaded", run_ps},
      {"pull", "download a model from the Hugging Face Hub", run_pull},
      {"ls", "list the models: the models dir and the Hub cache", run_ls},
      {"show", "describe a model", run_show},
      {"rm", "remove a pulled model from the Hub cache", run_rm},
      {"rpc-server", "serve this machine's devices to other allm servers (ggml RPC)",
       run_rpc_server},
  };
  return table;
}

}  // namespace allm
