#include "pooling.h"

#include <filesystem>
#include <fstream>

#include "nlohmann/json.hpp"

namespace stcpp {

namespace fs = std::filesystem;

namespace {

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

bool ends_with(const std::string& text, const std::string& tail) {
  return text.size() >= tail.size() &&
         text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

// The one pooling mode a Pooling module's config.json turns on.
void read_pooling_config(const fs::path& path, SentencePooling* out) {
  const nlohmann::json config = read_json(path);
  if (!config.is_object()) {
    out->problem = path.string() + " is missing or not a JSON object";
    return;
  }
  const std::pair<const char*, stcpp_pooling> supported[] = {
      {"pooling_mode_lasttoken", STCPP_POOLING_LAST},
      {"pooling_mode_mean_tokens", STCPP_POOLING_MEAN},
      {"pooling_mode_cls_token", STCPP_POOLING_CLS}};
  int modes = 0;
  for (const auto& [key, pooling] : supported) {
    if (config.value(key, false)) out->pooling = pooling, ++modes;
  }
  for (const char* key : {"pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens",
                          "pooling_mode_weightedmean_tokens"}) {
    if (config.value(key, false)) {
      out->problem = std::string("the pooling mode ") + key + " is not supported";
      return;
    }
  }
  if (modes != 1) out->problem = path.string() + " must turn on exactly one pooling mode";
}

}  // namespace

namespace {

SentencePooling read_modules(const std::string& folder) {
  SentencePooling out;
  const fs::path modules_path = fs::path(folder) / "modules.json";
  std::error_code ec;
  if (!fs::exists(modules_path, ec)) return out;
  out.normalize = false;
  const nlohmann::json modules = read_json(modules_path);
  if (!modules.is_array()) {
    out.problem = "modules.json is not a JSON array";
    return out;
  }
  bool pooled = false;
  for (const nlohmann::json& module : modules) {
    const std::string type = module.is_object() ? module.value("type", "") : "";
    if (ends_with(type, ".Transformer")) continue;
    if (ends_with(type, ".Normalize")) {
      out.normalize = true;
    } else if (ends_with(type, ".Pooling")) {
      pooled = true;
      read_pooling_config(fs::path(folder) / module.value("path", "") / "config.json", &out);
    } else {
      out.problem = "the sentence-transformers module '" + type + "' is not supported";
    }
    if (!out.problem.empty()) return out;
  }
  if (!pooled) out.problem = "modules.json declares no Pooling module";
  return out;
}

}  // namespace

SentencePooling read_sentence_pooling(const std::string& folder) {
  try {
    return read_modules(folder);
  } catch (const nlohmann::json::exception& e) {  // a field of the wrong type
    SentencePooling out;
    out.problem = std::string("the sentence-transformers files are malformed: ") + e.what();
    return out;
  }
}

}  // namespace stcpp
