// What `allm pull` and `allm serve --model` accept as a Hub model: REPO[@REVISION][:QUANT].
#pragma once

#include <optional>
#include <string>

namespace allm {

struct RepoSpec {
  std::string repo;               // "ORG/NAME"
  std::string revision = "main";  // a branch, tag or commit
  std::string quant;              // the file tag of a GGUF or whisper.cpp repo; "" for none
};

// Nullopt with `*problem` set when `text` is not REPO[@REVISION][:QUANT].
std::optional<RepoSpec> parse_repo_spec(const std::string& text, std::string* problem);
// "ORG/NAME" with the characters the Hub allows in repo ids (no path, no "..").
bool is_repo_id(const std::string& text);
// The Hub cache's folder of a model repo: "models--ORG--NAME"; the inverse gives "" when `folder`
// is not one.
std::string repo_cache_folder(const std::string& repo);
std::string repo_from_cache_folder(const std::string& folder);
// A full 40-hex git commit id.
bool is_commit_hash(const std::string& text);

}  // namespace allm
