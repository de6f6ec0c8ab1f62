// `allm pull REPO[@REVISION][:QUANT]`, and the pull `allm serve --model ORG/NAME` makes at start.
#include "cli/pull.h"

#include <cstdio>

#include "base/byte_size.h"
#include "base/log.h"
#include "cli/client_options.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/serve_options.h"
#include "hub/hub_settings.h"
#include "hub/pull.h"

namespace allm {

int run_pull(int argc, char** argv) {
  RepoCommandOptions options;
  if (auto status =
          parse_command_line("pull", argc, argv, parse_pull_options, pull_help, &options)) {
    return *status;
  }
  const HubSettings settings = hub_settings_from_env();
  ConsoleProgress progress(stdout);
  const PullResult result = pull_model(settings, options.spec, supported_model_types(), progress);
  if (!result.error.empty()) {
    std::fprintf(stderr, "allm pull: %s\n", result.error.c_str());
    return kExitFailure;
  }
  std::printf("pulled %s (commit %s): %zu file(s) in %s, %s downloaded\n", options.argument.c_str(),
              result.commit.c_str(), result.files.size(), result.snapshot.c_str(),
              format_bytes(result.downloaded_bytes).c_str());
  return kExitOk;
}

bool pull_hub_models(const std::vector<RepoSpec>& specs) {
  const HubSettings settings = hub_settings_from_env();
  for (const RepoSpec& spec : specs) {
    if (is_pulled(settings, spec)) continue;
    ALLM_LOG_INFO("--model %s is not in the Hub cache %s: pulling it", spec.repo.c_str(),
                  settings.cache_dir.c_str());
    LogProgress progress;
    const PullResult result = pull_model(settings, spec, supported_model_types(), progress);
    if (!result.error.empty()) {
      ALLM_LOG_ERROR("--model %s: %s", spec.repo.c_str(), result.error.c_str());
      return false;
    }
    ALLM_LOG_INFO("pulled %s into %s", spec.repo.c_str(), result.snapshot.c_str());
  }
  return true;
}

}  // namespace allm
