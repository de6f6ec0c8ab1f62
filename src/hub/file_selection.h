// Which files of a Hub repo a model needs, decided from the repo's file list alone (and, for a
// transformers folder, its config.json), before any weights are downloaded.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace allm {

struct HubFile {
  std::string path;        // as in the repo ("unet/config.json")
  uint64_t size = 0;       // 0 when the Hub did not say
  std::string lfs_sha256;  // the LFS oid; "" for files stored in git
};

// Files known by path alone (a snapshot's files).
std::vector<HubFile> files_at(const std::vector<std::string>& paths);

enum class RepoKind { TRANSFORMERS, GGUF, WHISPER_CPP, DIFFUSERS, SD_CHECKPOINT };

struct FileSelection {
  RepoKind kind = RepoKind::TRANSFORMERS;
  std::vector<std::string> files;  // repo paths, config.json first where there is one
  std::string problem;             // why the repo cannot be served, or the tag matches nothing
};

// `quant`: the tag of REPO:QUANT ("" for none).
FileSelection select_files(const std::vector<HubFile>& files, const std::string& repo,
                           const std::string& quant);

// llama.cpp's -hf rule: the tag, case-insensitive, followed by '.' or '-' in the file name.
bool file_matches_tag(const std::string& path, const std::string& tag);
// The tag a GGUF or whisper.cpp file is pulled by: "Q4_K_M" of "x-Q4_K_M.gguf" (or of the first
// shard "x-Q4_K_M-00001-of-00002.gguf"), "base.en" of "ggml-base.en.bin".
std::string file_tag(const std::string& path);
// A model GGUF (not a projector, imatrix or draft model) and, for split ones, its first shard.
bool is_primary_gguf(const std::string& path);
// A whisper.cpp model at the top of its repo: "ggml-base.en.bin".
bool is_whisper_cpp_file(const std::string& path);

// "" when a transformers config.json describes a model aLLM serves; else why not and what to
// pull instead. `supported_model_types`: the config model_type values the engine runs.
std::string config_refusal(const nlohmann::json& config, const std::string& repo,
                           const std::vector<std::string>& supported_model_types);

}  // namespace allm
