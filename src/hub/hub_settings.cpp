#include "hub/hub_settings.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>

namespace allm {

namespace fs = std::filesystem;

static std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

// $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
static fs::path hf_home() {
  if (!env("HF_HOME").empty()) return env("HF_HOME");
  if (!env("XDG_CACHE_HOME").empty()) return fs::path(env("XDG_CACHE_HOME")) / "huggingface";
  return fs::path(env("HOME")) / ".cache" / "huggingface";
}

fs::path hub_cache_dir_from_env() {
  if (!env("HF_HUB_CACHE").empty()) return env("HF_HUB_CACHE");
  return hf_home() / "hub";
}

static std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  return s.substr(start);
}

static std::string stored_token() {
  const fs::path path =
      env("HF_TOKEN_PATH").empty() ? hf_home() / "token" : fs::path(env("HF_TOKEN_PATH"));
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return trim(line);
}

static bool is_true(std::string value) {
  std::transform(value.begin(), value.end(), value.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return value == "1" || value == "ON" || value == "YES" || value == "TRUE";
}

HubSettings hub_settings_from_env() {
  HubSettings settings;
  std::string endpoint = trim(env("HF_ENDPOINT"));
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  if (!endpoint.empty()) settings.endpoint = endpoint;
  settings.cache_dir = hub_cache_dir_from_env();
  settings.token = trim(env("HF_TOKEN"));
  if (settings.token.empty()) settings.token = stored_token();
  settings.offline = is_true(env("HF_HUB_OFFLINE"));
  return settings;
}

}  // namespace allm
