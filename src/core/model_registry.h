// Which models exist and in which format: the models dir plus models registered by name.
#pragma once

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "text/model_format.h"
#include "text/quantization.h"

namespace allm {

enum class Modality { TEXT, AUDIO, IMAGE };

const char* modality_name(Modality modality);
// A manager's refusal of a model of another modality than it serves: a 400 on `model` that says
// what the model is and what is needed. Which endpoints serve the model is the API layer's to add.
Error wrong_modality_error(const std::string& model_id, Modality actual, Modality needed);
// A whisper ggml `.bin` file is an audio model; a `.safetensors` file with no config.json beside
// it (a Stable Diffusion checkpoint) and a folder with model_index.json (a diffusers pipeline) are
// image models; everything else (.gguf, other folders) is text.
Modality modality_of_path(const std::filesystem::path& path);

// What a model path holds: the files each format would load from.
struct FormatProbe {
  std::filesystem::path gguf_file;         // empty when there is none
  std::filesystem::path safetensors_path;  // the folder (or file) with *.safetensors
  bool has_gguf() const { return !gguf_file.empty(); }
  bool has_safetensors() const { return !safetensors_path.empty(); }
};

FormatProbe probe_model_path(const std::filesystem::path& path);

// Spec rules: (1) a .gguf → GGUF; (2) *.safetensors / *.safetensors.index.json → safetensors;
// (3) both → the format given at registration, safetensors by default. A registered format
// that is not present is FORMAT_MISMATCH.
struct ResolvedFormat {
  Error error;
  ModelFormat format = ModelFormat::GGUF;
  std::filesystem::path file;  // what the backend opens
};
ResolvedFormat resolve_format(const FormatProbe& probe, std::optional<ModelFormat> registered,
                              const std::string& model_id);

struct ModelEntry {
  std::string id;
  std::filesystem::path path;
  std::optional<ModelFormat> registered_format;
  Modality modality = Modality::TEXT;
  // Quantize on load when the model loads as safetensors: the registration suffix, else (once in
  // the registry) the server's --quantize.
  std::optional<Quantization> quantization;
};

// Parses `NAME=PATH[:gguf|:safetensors[:QUANT]]` (the --model flag); QUANT is none, q8_0, q4_0
// or q4_k, anything else after `:safetensors:` is a problem.
std::optional<ModelEntry> parse_model_spec(const std::string& spec, std::string* problem);

// The models of a Hugging Face Hub cache: each repo's default snapshot as `ORG/NAME`, and each
// GGUF (or whisper.cpp) file of it as `ORG/NAME:TAG` (ORG/NAME itself then being the file
// `allm pull ORG/NAME` picks).
std::vector<ModelEntry> hub_cache_models(const std::filesystem::path& hub_cache);

class ModelRegistry {
 public:
  // `quantization` applies to the models that name none; `hub_cache` (when not empty) adds the
  // models of a Hugging Face Hub cache.
  ModelRegistry(std::filesystem::path models_dir, std::vector<ModelEntry> explicit_models,
                Quantization quantization = Quantization::NONE,
                std::filesystem::path hub_cache = {});

  // Re-reads the models dir so that models dropped in while running are found.
  void refresh();
  std::vector<ModelEntry> list();
  std::optional<ModelEntry> find(const std::string& id);
  bool empty();

 private:
  std::filesystem::path models_dir_;
  std::vector<ModelEntry> explicit_models_;
  Quantization quantization_;
  std::filesystem::path hub_cache_;
  std::mutex mutex_;
  std::map<std::string, ModelEntry> entries_;
};

}  // namespace allm
