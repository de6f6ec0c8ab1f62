// `allm serve` options: each flag also read from an ALLM_* environment variable.
#pragma once

#include <string>
#include <vector>

#include "api/server.h"
#include "core/audio_manager.h"
#include "core/image_manager.h"
#include "core/model_lifecycle.h"
#include "core/model_registry.h"
#include "core/response_store.h"
#include "core/text_manager.h"
#include "hub/repo_spec.h"

namespace allm {

struct ServeOptions {
  ServerConfig server;
  TextManagerConfig text;
  AudioManagerConfig audio;
  ImageManagerConfig images;
  LifecycleConfig lifecycle;
  StoreRetention store;
  std::string
      store_location;  // --store: sqlite:PATH or postgres://…; empty: responses.db in data_dir
  std::string models_dir;
  std::string data_dir;
  std::vector<ModelEntry> models;
  std::vector<RepoSpec>
      hub_models;  // --model ORG/NAME[:QUANT]: from the Hub cache, pulled if missing
  Quantization quantization = Quantization::NONE;  // safetensors models without a suffix
  std::vector<std::string> preload;
  std::vector<std::string> rpc_workers;  // HOST:PORT of ggml RPC workers
  bool demo = true;                      // generate demo models when none are configured
  int shutdown_grace_seconds = 30;       // running requests may finish this long after SIGTERM
};

// Fills `options` from the environment, then the command line (which wins). On a problem,
// returns false with a message; `*show_help` is set for --help.
bool parse_serve_options(int argc, char** argv, ServeOptions* options, std::string* problem,
                         bool* show_help);
std::string serve_help();
// --models-dir's default: $ALLM_MODELS_DIR, else ~/.allm/models.
std::string default_models_dir();

}  // namespace allm
