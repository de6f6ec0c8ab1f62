// Where the Hub is and how to reach it, from the environment variables the Python Hub tools read.
#pragma once

#include <filesystem>
#include <string>

namespace allm {

struct HubSettings {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT (a mirror), no trailing '/'
  std::filesystem::path cache_dir;  // HF_HUB_CACHE, else $HF_HOME/hub (~/.cache/huggingface/hub)
  std::string token;                // HF_TOKEN, else the file `huggingface-cli login` writes
  bool offline = false;             // HF_HUB_OFFLINE=1: no network
};

HubSettings hub_settings_from_env();
std::filesystem::path hub_cache_dir_from_env();

}  // namespace allm
