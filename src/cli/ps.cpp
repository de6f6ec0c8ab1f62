// `allm ps`: the models a running server has loaded (GET /v1/admin/models).
#include <cstdio>

#include "cli/client_options.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/ps_table.h"
#include "cli/server_client.h"

namespace allm {

int run_ps(int argc, char** argv) {
  PsOptions options;
  if (const std::optional<int> done =
          parse_command_line("ps", argc, argv, parse_ps_options, ps_help, &options))
    return *done;
  ServerClient client(options.server);
  json loaded;
  ClientFailure failure;
  if (!client.get_json("/v1/admin/models", &loaded, &failure)) {
    std::fprintf(stderr, "allm ps: %s\n", failure.message.c_str());
    return failure.exit_status;
  }
  const std::string out = options.json ? loaded.dump(2) + "\n" : format_ps_table(loaded);
  std::fputs(out.c_str(), stdout);
  return kExitOk;
}

}  // namespace allm
