// `allm pull REPO[@REVISION][:QUANT]`, and the pull `allm serve --model ORG/NAME` makes at start.
#include "cli/pull.h"

#include <cstdio>

#include "base/byte_size.h"
#include "base/log.h"
#include "cli/commands.h"
#include "cli/serve_options.h"
#include "cli/usage.h"
#include "hub/hub_settings.h"
#include "hub/pull.h"

namespace allm {

static const char* kPullHelp =
    "usage: allm pull REPO[@REVISION][:QUANT]\n\n"
    "Downloads a model from the Hugging Face Hub into the shared Hub cache (the one the Python\n"
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
    "exit status: 0 pulled, 1 failed, 2 bad usage\n";

int run_pull(int argc, char** argv) {
  std::optional<RepoSpec> spec;
  if (auto status = repo_command_usage(argc, argv, "pull", kPullHelp, &spec)) return *status;
  const HubSettings settings = hub_settings_from_env();
  ConsoleProgress progress(stdout);
  const PullResult result = pull_model(settings, *spec, supported_model_types(), progress);
  if (!result.error.empty()) {
    std::fprintf(stderr, "allm pull: %s\n", result.error.c_str());
    return 1;
  }
  std::printf("pulled %s (commit %s): %zu file(s) in %s, %s downloaded\n", argv[0],
              result.commit.c_str(), result.files.size(), result.snapshot.c_str(),
              format_bytes(result.downloaded_bytes).c_str());
  return 0;
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
