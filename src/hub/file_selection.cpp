#include "hub/file_selection.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace allm {

static bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

static std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

static std::string base_name(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

static std::string folder_of(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

// The split suffix of GGUF shards, before ".gguf": "-00001-of-00003".
constexpr size_t kSplitSuffixSize = 15;

static bool all_digits(const std::string& text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
}

// {index, count} of a GGUF shard; {1, 1} for an unsplit file.
static std::pair<int, int> gguf_split(const std::string& path) {
  const size_t ext = 5;  // ".gguf"
  if (!ends_with(path, ".gguf") || path.size() < kSplitSuffixSize + ext) return {1, 1};
  const std::string part = path.substr(path.size() - ext - kSplitSuffixSize, kSplitSuffixSize);
  const std::string index = part.substr(1, 5), count = part.substr(10, 5);
  if (part[0] != '-' || part.compare(6, 4, "-of-") != 0 || !all_digits(index) || !all_digits(count))
    return {1, 1};
  return {std::stoi(index), std::stoi(count)};
}

static bool is_model_gguf(const std::string& path) {
  if (!ends_with(lower(path), ".gguf")) return false;
  const std::string name = lower(base_name(path));
  for (const char* other : {"mmproj", "imatrix", "mtp-", "eagle3-", "dflash-", "dspark-"}) {
    if (name.find(other) != std::string::npos) return false;
  }
  return true;
}

bool is_primary_gguf(const std::string& path) {
  return is_model_gguf(path) && gguf_split(path).first == 1;
}

bool file_matches_tag(const std::string& path, const std::string& tag) {
  if (tag.empty()) return false;
  const std::string name = lower(base_name(path));
  const std::string needle = lower(tag);
  for (size_t at = name.find(needle); at != std::string::npos; at = name.find(needle, at + 1)) {
    const size_t end = at + needle.size();
    if (end < name.size() && (name[end] == '.' || name[end] == '-')) return true;
  }
  return false;
}

bool is_whisper_cpp_file(const std::string& path) {
  const std::string name = base_name(path);
  return path == name && name.rfind("ggml-", 0) == 0 && ends_with(name, ".bin");
}

std::string file_tag(const std::string& path) {
  std::string name = base_name(path);
  if (is_whisper_cpp_file(name)) return name.substr(5, name.size() - 9);
  if (!ends_with(lower(name), ".gguf")) return "";
  const size_t split = gguf_split(name).second > 1 ? kSplitSuffixSize : 0;
  const std::string stem = name.substr(0, name.size() - 5 - split);
  const size_t sep = stem.find_last_of("-.");
  return sep == std::string::npos ? stem : stem.substr(sep + 1);
}

static std::string tags_of(const std::vector<std::string>& paths) {
  std::string out;
  for (const auto& path : paths) {
    out += out.empty() ? "" : ", ";
    out += file_tag(path);
  }
  return out;
}

std::vector<HubFile> files_at(const std::vector<std::string>& paths) {
  std::vector<HubFile> files;
  for (const auto& path : paths) files.push_back({path, 0, ""});
  return files;
}

static std::vector<std::string> paths_where(const std::vector<HubFile>& files,
                                            bool (*wanted)(const std::string&)) {
  std::vector<std::string> paths;
  for (const auto& f : files) {
    if (wanted(f.path)) paths.push_back(f.path);
  }
  return paths;
}

static FileSelection refusal(RepoKind kind, std::string problem) {
  FileSelection out;
  out.kind = kind;
  out.problem = std::move(problem);
  return out;
}

// The shards of the split GGUF `first` belongs to (or `first` alone).
static std::vector<std::string> gguf_parts(const std::vector<HubFile>& files,
                                           const std::string& first) {
  const int count = gguf_split(first).second;
  if (count == 1) return {first};
  const std::string prefix =
      first.substr(0, first.size() - std::string("00001-of-00000.gguf").size());
  std::vector<std::string> parts;
  for (const auto& f : files) {
    if (f.path.rfind(prefix, 0) == 0 && gguf_split(f.path).second == count) parts.push_back(f.path);
  }
  std::sort(parts.begin(), parts.end());
  return parts;
}

static FileSelection select_gguf(const std::vector<HubFile>& files, const std::string& repo,
                                 const std::string& quant) {
  const std::vector<std::string> primaries = paths_where(files, is_primary_gguf);
  const std::vector<std::string> wanted =
      quant.empty() ? std::vector<std::string>{"Q4_K_M", "Q8_0"} : std::vector<std::string>{quant};
  std::string chosen;
  for (const auto& tag : wanted) {
    for (const auto& path : primaries) {
      if (chosen.empty() && file_matches_tag(path, tag)) chosen = path;
    }
  }
  if (chosen.empty() && quant.empty()) chosen = primaries.front();
  if (chosen.empty()) {
    return refusal(RepoKind::GGUF, repo + " has no GGUF file tagged '" + quant +
                                       "'; its tags: " + tags_of(primaries));
  }
  FileSelection out;
  out.kind = RepoKind::GGUF;
  out.files = gguf_parts(files, chosen);
  return out;
}

static FileSelection select_whisper_cpp(const std::vector<HubFile>& files, const std::string& repo,
                                        const std::string& quant) {
  const std::vector<std::string> models = paths_where(files, is_whisper_cpp_file);
  if (quant.empty() && models.size() == 1) return FileSelection{RepoKind::WHISPER_CPP, models, ""};
  for (const auto& path : models) {
    if (!quant.empty() && lower(file_tag(path)) == lower(quant)) {
      return FileSelection{RepoKind::WHISPER_CPP, {path}, ""};
    }
  }
  const std::string which = quant.empty() ? "name a model" : "'" + quant + "' is not one";
  return refusal(RepoKind::WHISPER_CPP, repo + " holds several whisper.cpp models; " + which +
                                            " as " + repo + ":TAG, TAG one of: " + tags_of(models));
}

static bool is_tokenizer_or_config(const std::string& name) {
  static const std::set<std::string> names = {"config.json",
                                              "generation_config.json",
                                              "tokenizer.json",
                                              "tokenizer_config.json",
                                              "special_tokens_map.json",
                                              "added_tokens.json",
                                              "vocab.json",
                                              "vocab.txt",
                                              "merges.txt",
                                              "tokenizer.model",
                                              "chat_template.jinja",
                                              "chat_template.json",
                                              "scheduler_config.json",
                                              "preprocessor_config.json"};
  return names.count(name) > 0;
}

// A variant a folder may hold beside its plain weights: "diffusion_pytorch_model.fp16.safetensors".
static bool is_weight_variant(const std::string& name) {
  for (const char* variant : {".fp16", ".bf16", ".fp32", ".non_ema", ".ema"}) {
    if (ends_with(lower(name), variant + std::string(".safetensors"))) return true;
  }
  return false;
}

static FileSelection select_diffusers(const std::vector<HubFile>& files, const std::string& repo) {
  static const std::set<std::string> components = {
      "unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler"};
  std::map<std::string, std::vector<std::string>> weights;  // component → plain, then variants
  FileSelection out;
  out.kind = RepoKind::DIFFUSERS;
  out.files.push_back("model_index.json");
  for (const auto& f : files) {
    const std::string folder = folder_of(f.path);
    const std::string name = base_name(f.path);
    if (!components.count(folder)) continue;
    if (ends_with(name, ".safetensors")) {
      auto& list = weights[folder];
      if (is_weight_variant(name)) {
        list.push_back(f.path);
      } else {
        list.insert(list.begin(), f.path);
      }
    } else if (ends_with(name, ".json") || ends_with(name, ".txt")) {
      out.files.push_back(f.path);
    }
  }
  for (const char* needed : {"unet", "vae", "text_encoder"}) {
    if (!weights.count(needed)) {
      return refusal(RepoKind::DIFFUSERS, repo + " has no safetensors weights for its " +
                                              std::string(needed) +
                                              " (only .bin/.ckpt files, which aLLM cannot load)");
    }
  }
  for (const auto& [component, list] : weights) out.files.push_back(list.front());
  return out;
}

static FileSelection select_transformers(const std::vector<HubFile>& files,
                                         const std::string& repo) {
  FileSelection out;
  out.kind = RepoKind::TRANSFORMERS;
  bool has_weights = false, has_bin = false;
  for (const auto& f : files) {
    const std::string name = base_name(f.path);
    if (f.path != name) continue;  // original/, onnx/, ...: other formats of the same weights
    if (ends_with(name, ".safetensors") && name.rfind("consolidated", 0) != 0) {
      out.files.push_back(f.path);
      has_weights = true;
    } else if (name == "model.safetensors.index.json" || is_tokenizer_or_config(name)) {
      out.files.push_back(f.path);
    } else if (ends_with(name, ".bin") || ends_with(name, ".pt") || ends_with(name, ".pth")) {
      has_bin = true;
    }
  }
  if (!has_weights) {
    return refusal(RepoKind::TRANSFORMERS,
                   repo + (has_bin ? " has only PyTorch .bin weights" : " has no weights") +
                       " and no .safetensors, which aLLM cannot load; pull a GGUF conversion "
                       "(a repo named like " +
                       base_name(repo) + "-GGUF) or a safetensors upload");
  }
  // config.json first: the model is checked before its weights come.
  std::stable_partition(out.files.begin(), out.files.end(),
                        [](const std::string& p) { return p == "config.json"; });
  return out;
}

FileSelection select_files(const std::vector<HubFile>& files, const std::string& repo,
                           const std::string& quant) {
  auto has = [&](auto pred) { return std::any_of(files.begin(), files.end(), pred); };
  const bool has_config = has([](const HubFile& f) { return f.path == "config.json"; });
  // A safetensors folder that also ships GGUF files is the folder, unless a tag names a GGUF.
  const bool folder_first =
      quant.empty() && has_config && has([](const HubFile& f) {
        return f.path == base_name(f.path) && ends_with(f.path, ".safetensors");
      });
  if (!folder_first && has([](const HubFile& f) { return is_model_gguf(f.path); })) {
    return select_gguf(files, repo, quant);
  }
  if (has([](const HubFile& f) { return is_whisper_cpp_file(f.path); })) {
    return select_whisper_cpp(files, repo, quant);
  }
  const RepoKind kind = has([](const HubFile& f) { return f.path == "model_index.json"; })
                            ? RepoKind::DIFFUSERS
                            : RepoKind::TRANSFORMERS;
  if (!quant.empty() && kind == RepoKind::DIFFUSERS) {
    return refusal(kind, "a :QUANT tag picks a file of a GGUF or whisper.cpp repo; " + repo +
                             " is a diffusers folder");
  }
  if (kind == RepoKind::DIFFUSERS) return select_diffusers(files, repo);
  if (has_config) {
    if (!quant.empty()) {
      return refusal(kind, "a :QUANT tag picks a file of a GGUF or whisper.cpp repo; " + repo +
                               " is a safetensors folder (quantize on load with "
                               "serve --model NAME=PATH:safetensors:QUANT)");
    }
    return select_transformers(files, repo);
  }
  // No config.json: single-file Stable Diffusion checkpoints, picked by tag when several.
  const std::vector<std::string> checkpoints = paths_where(files, [](const std::string& path) {
    return path == base_name(path) && ends_with(path, ".safetensors");
  });
  for (const auto& path : checkpoints) {
    if (checkpoints.size() == 1 && quant.empty()) return {RepoKind::SD_CHECKPOINT, {path}, ""};
    if (!quant.empty() && lower(path).find(lower(quant)) != std::string::npos) {
      return {RepoKind::SD_CHECKPOINT, {path}, ""};
    }
  }
  if (checkpoints.empty()) {
    return refusal(RepoKind::TRANSFORMERS,
                   repo +
                       " holds no model aLLM serves (no .gguf, whisper.cpp ggml-*.bin, "
                       ".safetensors with config.json, or diffusers model_index.json)");
  }
  std::string names;
  for (const auto& path : checkpoints) names += (names.empty() ? "" : ", ") + path;
  return refusal(RepoKind::SD_CHECKPOINT, repo + " holds several checkpoints; pick one as " + repo +
                                              ":PART (part of its name): " + names);
}

// "openai/whisper-base.en" → "base.en": the whisper.cpp model of the same size.
static std::string whisper_size(const std::string& repo) {
  const std::string name = lower(base_name(repo));
  const size_t at = name.find("whisper-");
  return at == std::string::npos ? "base" : name.substr(at + 8);
}

std::string config_refusal(const nlohmann::json& config, const std::string& repo,
                           const std::vector<std::string>& supported_model_types) {
  if (!config.is_object()) return repo + ": config.json is not a JSON object";
  const std::string model_type = config.value("model_type", std::string());
  if (model_type == "whisper") {
    return repo +
           " is a transformers Whisper checkpoint, which aLLM does not serve; pull the "
           "whisper.cpp model of the same size instead: allm pull ggerganov/whisper.cpp:" +
           whisper_size(repo);
  }
  if (supported_model_types.empty()) return "";
  if (std::find(supported_model_types.begin(), supported_model_types.end(), model_type) !=
      supported_model_types.end()) {
    return "";
  }
  std::string list;
  for (const auto& t : supported_model_types) list += (list.empty() ? "" : ", ") + t;
  return repo + " is a '" + model_type +
         "' model, which aLLM does not run as safetensors "
         "(it runs: " +
         list + "); a GGUF conversion of it may work (" + base_name(repo) + "-GGUF)";
}

}  // namespace allm
