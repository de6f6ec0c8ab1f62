#include "core/model_registry.h"

#include <algorithm>

#include "hub/file_selection.h"
#include "hub/hub_cache.h"

namespace allm {

namespace fs = std::filesystem;

const char* modality_name(Modality modality) {
  switch (modality) {
    case Modality::AUDIO: return "audio";
    case Modality::IMAGE: return "image";
    default: return "text";
  }
}

// "a text model", "an image model (...)": what a manager of `modality` needs.
static std::string modality_noun(Modality modality) {
  switch (modality) {
    case Modality::AUDIO: return "an audio model (a whisper .bin)";
    case Modality::IMAGE: return "an image model (a Stable Diffusion .safetensors checkpoint)";
    default: return "a text model";
  }
}

Error wrong_modality_error(const std::string& model_id, Modality actual, Modality needed) {
  const std::string article = actual == Modality::TEXT ? "a " : "an ";
  return request_error("The model '" + quote_excerpt(model_id) + "' is " + article +
                           modality_name(actual) + " model, not " + modality_noun(needed),
                       "model");
}

static bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Modality modality_of_path(const fs::path& path) {
  const std::string name = path.filename().string();
  if (ends_with(name, ".bin")) return Modality::AUDIO;
  std::error_code ec;
  if (ends_with(name, ".safetensors") && !fs::exists(path.parent_path() / "config.json", ec)) {
    return Modality::IMAGE;
  }
  // A diffusers pipeline folder (unet/, vae/, text_encoder/, ... listed in model_index.json).
  if (fs::is_directory(path, ec) && fs::exists(path / "model_index.json", ec)) {
    return Modality::IMAGE;
  }
  return Modality::TEXT;
}

static bool is_safetensors_name(const std::string& name) {
  return ends_with(name, ".safetensors") || ends_with(name, ".safetensors.index.json");
}

FormatProbe probe_model_path(const fs::path& path) {
  FormatProbe probe;
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    const std::string name = path.filename().string();
    if (ends_with(name, ".gguf")) probe.gguf_file = path;
    if (is_safetensors_name(name)) probe.safetensors_path = path;
    return probe;
  }
  if (!fs::is_directory(path, ec)) return probe;
  std::vector<fs::path> ggufs;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    const std::string name = entry.path().filename().string();
    if (ends_with(name, ".gguf")) ggufs.push_back(entry.path());
    if (is_safetensors_name(name)) probe.safetensors_path = path;
  }
  if (!ggufs.empty()) {
    // A split GGUF starts at its lowest-numbered part, which also sorts first.
    std::sort(ggufs.begin(), ggufs.end());
    probe.gguf_file = ggufs.front();
  }
  return probe;
}

ResolvedFormat resolve_format(const FormatProbe& probe, std::optional<ModelFormat> registered,
                              const std::string& model_id) {
  ResolvedFormat out;
  if (!probe.has_gguf() && !probe.has_safetensors()) {
    out.error = make_error(ErrorCode::LOAD_FAILED, "model '" + model_id +
                                                       "' has no .gguf file and no *.safetensors "
                                                       "files; nothing to load");
    return out;
  }
  ModelFormat format;
  if (registered) {
    format = *registered;
  } else if (probe.has_safetensors()) {
    format = ModelFormat::SAFETENSORS;  // rules 2 and 3 (default when both are present)
  } else {
    format = ModelFormat::GGUF;
  }
  const bool present = format == ModelFormat::GGUF ? probe.has_gguf() : probe.has_safetensors();
  if (!present) {
    out.error =
        make_error(ErrorCode::FORMAT_MISMATCH,
                   std::string("model '") + model_id + "' was registered as " +
                       model_format_name(format) + " but its path holds no " +
                       (format == ModelFormat::GGUF ? ".gguf file" : "*.safetensors files"));
    return out;
  }
  out.format = format;
  out.file = format == ModelFormat::GGUF ? probe.gguf_file : probe.safetensors_path;
  return out;
}

std::optional<ModelEntry> parse_model_spec(const std::string& spec, std::string* problem) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) {
    *problem = "expected NAME=PATH[:gguf|:safetensors[:QUANT]], got '" + spec + "'";
    return std::nullopt;
  }
  ModelEntry entry;
  entry.id = spec.substr(0, eq);
  std::string path = spec.substr(eq + 1);
  // `PATH:safetensors:QUANT`: the last part (no '/' in it) is a quantization.
  const size_t quant_colon = path.rfind(':');
  const std::string quant = path.substr(quant_colon == std::string::npos ? 0 : quant_colon + 1);
  if (quant_colon != std::string::npos && quant.find('/') == std::string::npos &&
      ends_with(path.substr(0, quant_colon), ":safetensors")) {
    entry.quantization = parse_quantization(quant);
    if (!entry.quantization) {
      *problem = "unknown quantization '" + quant + "' in '" + spec + "' (expected " +
                 kQuantizationNames + ")";
      return std::nullopt;
    }
    path.resize(quant_colon);
  }
  const size_t colon = path.rfind(':');
  if (colon != std::string::npos) {
    if (auto format = parse_model_format(path.substr(colon + 1))) {
      entry.registered_format = format;
      path.resize(colon);
    }
  }
  if (path.empty()) {  // `NAME=:gguf`
    *problem = "no model path in '" + spec + "' (expected NAME=PATH[:gguf|:safetensors[:QUANT]])";
    return std::nullopt;
  }
  entry.path = path;
  entry.modality = modality_of_path(entry.path);
  return entry;
}

static ModelEntry cached_entry(std::string id, fs::path path) {
  ModelEntry entry;
  entry.id = std::move(id);
  entry.modality = modality_of_path(path);
  entry.path = std::move(path);
  return entry;
}

std::vector<ModelEntry> hub_cache_models(const fs::path& hub_cache) {
  std::vector<ModelEntry> entries;
  const HubCache cache(hub_cache);
  for (const CachedRepo& repo : cache.list()) {
    const fs::path snapshot = cache.snapshot_dir(repo.repo, repo.default_commit);
    const std::vector<std::string> paths = cache.snapshot_files(repo.repo, repo.default_commit);
    for (const auto& file : paths) {
      if (is_primary_gguf(file) || is_whisper_cpp_file(file)) {
        entries.push_back(cached_entry(repo.repo + ":" + file_tag(file), snapshot / file));
      }
    }
    // What `allm pull ORG/NAME` would pick among the files there.
    const FileSelection selection = select_files(files_at(paths), repo.repo, "");
    if (!selection.problem.empty()) continue;
    const bool one_file = selection.kind == RepoKind::GGUF ||
                          selection.kind == RepoKind::SD_CHECKPOINT ||
                          selection.kind == RepoKind::WHISPER_CPP;
    entries.push_back(
        cached_entry(repo.repo, one_file ? snapshot / selection.files.front() : snapshot));
  }
  return entries;
}

ModelRegistry::ModelRegistry(fs::path models_dir, std::vector<ModelEntry> explicit_models,
                             Quantization quantization, fs::path hub_cache)
    : models_dir_(std::move(models_dir)),
      explicit_models_(std::move(explicit_models)),
      quantization_(quantization),
      hub_cache_(std::move(hub_cache)) {
  refresh();
}

void ModelRegistry::refresh() {
  std::map<std::string, ModelEntry> entries;
  std::error_code ec;
  if (fs::is_directory(models_dir_, ec)) {
    for (const auto& item : fs::directory_iterator(models_dir_, ec)) {
      const std::string name = item.path().filename().string();
      if (name.empty() || name[0] == '.') continue;
      ModelEntry entry;
      entry.path = item.path();
      if (item.is_directory(ec)) {
        entry.id = name;
        entry.modality = modality_of_path(item.path());
      } else if (ends_with(name, ".gguf") || ends_with(name, ".bin") ||
                 ends_with(name, ".safetensors")) {
        entry.id = item.path().stem().string();
        entry.modality = modality_of_path(item.path());
      } else {
        continue;
      }
      entries[entry.id] = entry;
    }
  }
  if (!hub_cache_.empty()) {
    for (auto& entry : hub_cache_models(hub_cache_)) entries[entry.id] = entry;
  }
  for (const auto& entry : explicit_models_) entries[entry.id] = entry;  // flags win
  for (auto& [id, entry] : entries) {
    if (!entry.quantization) entry.quantization = quantization_;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  entries_ = std::move(entries);
}

std::vector<ModelEntry> ModelRegistry::list() {
  refresh();
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ModelEntry> out;
  for (const auto& [id, entry] : entries_) out.push_back(entry);
  return out;
}

std::optional<ModelEntry> ModelRegistry::find(const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(id);
    if (it != entries_.end()) return it->second;
  }
  refresh();
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

bool ModelRegistry::empty() {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.empty();
}

}  // namespace allm
