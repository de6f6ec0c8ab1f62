// `allm pull`: a Hub model into the shared cache, only the files it needs, verified, resumable.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hub/hub_settings.h"
#include "hub/repo_spec.h"

namespace allm {

// What a pull reports as it goes (the CLI draws a bar or prints lines; the server logs).
class PullObserver {
 public:
  virtual ~PullObserver() = default;
  virtual void file_started(const std::string& file, uint64_t size) = 0;
  virtual void file_progress(uint64_t bytes, uint64_t size) = 0;
  // `downloaded`: false when the file was in the cache already.
  virtual void file_done(const std::string& file, uint64_t size, bool downloaded) = 0;
};

struct PullResult {
  std::string error;  // "" on success
  std::string commit;
  std::filesystem::path snapshot;  // snapshots/<commit>
  std::vector<std::string> files;  // the model's files in it
  uint64_t downloaded_bytes = 0;
};

// `supported_model_types`: the config.json model_type values the engine runs (empty: any).
PullResult pull_model(const HubSettings& settings, const RepoSpec& spec,
                      const std::vector<std::string>& supported_model_types,
                      PullObserver& observer);

// Whether the model is in the cache with every file it needs: what `allm serve --model ORG/NAME`
// checks before it pulls.
bool is_pulled(const HubSettings& settings, const RepoSpec& spec);

}  // namespace allm
