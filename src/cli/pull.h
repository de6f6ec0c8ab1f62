// Pulls from the CLI: how a pull shows its progress (a bar on a terminal, a line per file
// otherwise, log lines in the server), and the pulls `allm serve --model ORG/NAME` makes.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "hub/pull.h"
#include "hub/repo_spec.h"

namespace allm {

class ConsoleProgress : public PullObserver {
 public:
  explicit ConsoleProgress(std::FILE* out);
  void file_started(const std::string& file, uint64_t size) override;
  void file_progress(uint64_t bytes, uint64_t size) override;
  void file_done(const std::string& file, uint64_t size, bool downloaded) override;

 private:
  std::FILE* out_;
  bool tty_;
  std::string file_;
  std::chrono::steady_clock::time_point started_, last_draw_;
};

class LogProgress : public PullObserver {
 public:
  void file_started(const std::string& file, uint64_t size) override;
  void file_progress(uint64_t bytes, uint64_t size) override;
  void file_done(const std::string& file, uint64_t size, bool downloaded) override;

 private:
  int next_tenth_ = 1;  // logs at each further tenth of a file
};

// The config.json model_type values the safetensors engine runs.
std::vector<std::string> supported_model_types();

// Pulls those of `specs` not complete in the Hub cache, logging progress; false (logged) when one
// fails.
bool pull_hub_models(const std::vector<RepoSpec>& specs);

}  // namespace allm
