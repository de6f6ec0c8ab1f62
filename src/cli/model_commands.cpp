// `allm ls`, `allm show ID`, `allm rm ID`: the models of the models dir and the Hub cache.
#include <ggml.h>
#include <gguf.h>
#include <safetensors.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/byte_size.h"
#include "cli/client_options.h"
#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/serve_options.h"
#include "core/model_registry.h"
#include "hub/file_selection.h"
#include "hub/hub_cache.h"
#include "hub/hub_settings.h"

namespace allm {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Model folders nest a few levels at most (a diffusers pipeline: two).
constexpr int kMaxFolderDepth = 8;

namespace {

// What `ls` and `show` tell of a model, read from its metadata only (no weights).
struct ModelFacts {
  std::string format = "-", architecture = "-", dtype = "-", parameters = "-";
  long context_length = 0;
  bool chat_template = false, template_tools = false;
};

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return in ? json::parse(in, nullptr, false) : json();
}

std::string count_text(uint64_t n) {
  char text[32];
  if (n >= 1000000000ULL) {
    std::snprintf(text, sizeof text, "%.1fB", n / 1e9);
  } else if (n >= 1000000ULL) {
    std::snprintf(text, sizeof text, "%.1fM", n / 1e6);
  } else {
    std::snprintf(text, sizeof text, "%.1fK", n / 1e3);
  }
  return text;
}

void note_template(ModelFacts* facts, const std::string& text) {
  facts->chat_template = facts->chat_template || !text.empty();
  facts->template_tools = facts->template_tools || text.find("tools") != std::string::npos;
}

void gguf_facts(const fs::path& file, ModelFacts* facts) {
  facts->format = "gguf";
  ggml_context* tensors = nullptr;
  gguf_context* gguf = gguf_init_from_file(file.c_str(), {true, &tensors});
  if (!gguf) return;
  auto text = [&](const std::string& key) {
    const int64_t id = gguf_find_key(gguf, key.c_str());
    return id >= 0 && gguf_get_kv_type(gguf, id) == GGUF_TYPE_STRING
               ? std::string(gguf_get_val_str(gguf, id))
               : std::string();
  };
  facts->architecture = text("general.architecture");
  const int64_t ctx = gguf_find_key(gguf, (facts->architecture + ".context_length").c_str());
  if (ctx >= 0 && gguf_get_kv_type(gguf, ctx) == GGUF_TYPE_UINT32)
    facts->context_length = gguf_get_val_u32(gguf, ctx);
  note_template(facts, text("tokenizer.chat_template"));
  uint64_t parameters = 0;
  for (ggml_tensor* t = ggml_get_first_tensor(tensors); t; t = ggml_get_next_tensor(tensors, t)) {
    parameters += static_cast<uint64_t>(ggml_nelements(t));
  }
  facts->parameters = count_text(parameters);
  const std::string tag = file_tag(file.filename().string());
  facts->dtype = tag.empty() ? "-" : tag;
  gguf_free(gguf);
  ggml_free(tensors);
}

void count_tensor(const stcpp_tensor_info* tensor, void* total) {
  uint64_t n = 1;
  for (int i = 0; i < tensor->n_dims; ++i) n *= static_cast<uint64_t>(tensor->shape[i]);
  *static_cast<uint64_t*>(total) += n;
}

void safetensors_facts(const fs::path& path, ModelFacts* facts) {
  facts->format = "safetensors";
  const fs::path dir = fs::is_directory(path) ? path : path.parent_path();
  const json config = read_json(dir / "config.json");
  if (config.is_object()) {
    facts->architecture = config.value("model_type", "-");
    facts->dtype = config.value("torch_dtype", config.value("dtype", "-"));
    facts->context_length = config.value("max_position_embeddings", 0L);
  }
  const json tokenizer_config = read_json(dir / "tokenizer_config.json");
  if (tokenizer_config.is_object() && tokenizer_config.contains("chat_template")) {
    note_template(facts, tokenizer_config["chat_template"].dump());
  }
  std::ifstream jinja(dir / "chat_template.jinja");
  note_template(facts, std::string(std::istreambuf_iterator<char>(jinja), {}));
  uint64_t parameters = 0;
  stcpp_status status;
  char message[256];
  if (stcpp_checkpoint_tensors(path.c_str(), count_tensor, &parameters, &status, message,
                               sizeof message)) {
    facts->parameters = count_text(parameters);
  }
}

ModelFacts facts_of(const ModelEntry& entry) {
  ModelFacts facts;
  std::error_code ec;
  if (fs::exists(entry.path / "model_index.json", ec)) {
    facts.format = "diffusers";
    facts.architecture = read_json(entry.path / "model_index.json").value("_class_name", "-");
    return facts;
  }
  if (entry.modality == Modality::AUDIO) {
    facts.format = "ggml";
    facts.architecture = "whisper";
    return facts;
  }
  const FormatProbe probe = probe_model_path(entry.path);
  const ResolvedFormat format = resolve_format(probe, entry.registered_format, entry.id);
  if (format.error) return facts;
  if (format.format == ModelFormat::GGUF) {
    gguf_facts(format.file, &facts);
  } else {
    safetensors_facts(format.file, &facts);
  }
  return facts;
}

std::vector<ModelEntry> all_models() {
  return ModelRegistry(default_models_dir(), {}, Quantization::NONE, hub_cache_dir_from_env())
      .list();
}

}  // namespace

int run_ls(int argc, char** argv) {
  LsOptions options;
  if (auto status = parse_command_line("ls", argc, argv, parse_ls_options, ls_help, &options)) {
    return *status;
  }
  std::printf("%-44s %-9s %-11s %-14s %-8s %-10s %-10s %s\n", "ID", "MODALITY", "FORMAT", "ARCH",
              "PARAMS", "QUANT", "SIZE", "WHERE");
  for (const ModelEntry& entry : all_models()) {
    const ModelFacts facts = facts_of(entry);
    std::printf("%-44s %-9s %-11s %-14s %-8s %-10s %-10s %s\n", entry.id.c_str(),
                modality_name(entry.modality), facts.format.c_str(), facts.architecture.c_str(),
                facts.parameters.c_str(), facts.dtype.c_str(),
                format_bytes(disk_size(entry.path)).c_str(), entry.path.c_str());
  }
  return kExitOk;
}

int run_show(int argc, char** argv) {
  ShowOptions options;
  if (auto status =
          parse_command_line("show", argc, argv, parse_show_options, show_model_help, &options)) {
    return *status;
  }
  for (const ModelEntry& entry : all_models()) {
    if (entry.id != options.id) continue;
    const ModelFacts facts = facts_of(entry);
    std::printf(
        "id: %s\npath: %s\nmodality: %s\nformat: %s\narchitecture: %s\nparameters: %s\n"
        "dtype/quant: %s\ncontext length: %s\nchat template: %s\nfiles:\n",
        entry.id.c_str(), entry.path.c_str(), modality_name(entry.modality), facts.format.c_str(),
        facts.architecture.c_str(), facts.parameters.c_str(), facts.dtype.c_str(),
        facts.context_length ? std::to_string(facts.context_length).c_str() : "-",
        !facts.chat_template   ? "no"
        : facts.template_tools ? "yes (supports tools)"
                               : "yes (no tools)");
    std::error_code ec;
    if (!fs::is_directory(entry.path, ec)) {
      std::printf("  %s  %s\n", entry.path.filename().c_str(),
                  format_bytes(disk_size(entry.path)).c_str());
      return kExitOk;
    }
    std::vector<fs::path> files;
    fs::recursive_directory_iterator it(entry.path, ec), end;
    for (; !ec && it != end; it.increment(ec)) {
      if (it.depth() >= kMaxFolderDepth) it.disable_recursion_pending();
      if (!it->is_directory(ec)) files.push_back(it->path().lexically_relative(entry.path));
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& file : files) {
      std::printf("  %s  %s\n", file.c_str(), format_bytes(disk_size(entry.path / file)).c_str());
    }
    return kExitOk;
  }
  std::fprintf(stderr, "allm show: no model '%s' (see allm ls)\n", options.id.c_str());
  return kExitFailure;
}

int run_rm(int argc, char** argv) {
  RepoCommandOptions options;
  if (auto status = parse_command_line("rm", argc, argv, parse_rm_options, rm_help, &options)) {
    return *status;
  }
  const RepoSpec& spec = options.spec;
  const HubCache cache(hub_cache_dir_from_env());
  const auto repo = cache.find(spec.repo);
  auto commit = repo ? cache.resolve_revision(spec.repo, spec.revision) : std::nullopt;
  if (repo && !commit && spec.revision == "main") commit = repo->default_commit;  // no refs/main
  if (!repo || !commit) {
    std::fprintf(stderr, "allm rm: %s is not in the Hub cache %s\n", options.argument.c_str(),
                 cache.root().c_str());
    return kExitFailure;
  }
  std::vector<std::string> files;
  if (!spec.quant.empty()) {
    const FileSelection selection =
        select_files(files_at(cache.snapshot_files(spec.repo, *commit)), spec.repo, spec.quant);
    if (!selection.problem.empty()) {
      std::fprintf(stderr, "allm rm: %s\n", selection.problem.c_str());
      return kExitFailure;
    }
    files = selection.files;
  }
  uint64_t freed = 0;
  const std::string error = cache.remove(spec.repo, *commit, files, &freed);
  if (!error.empty()) {
    std::fprintf(stderr, "allm rm: %s\n", error.c_str());
    return kExitFailure;
  }
  std::printf("removed %s (snapshot %s), freed %s\n", options.argument.c_str(), commit->c_str(),
              format_bytes(freed).c_str());
  return kExitOk;
}

}  // namespace allm
