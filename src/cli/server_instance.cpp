#include "cli/server_instance.h"

#include <filesystem>

#include "base/log.h"
#include "base/rpc_workers.h"
#include "cli/pull.h"
#include "core/cpu_threads.h"
#include "core/response_store.h"
#include "core/store_location.h"
#include "demo/tiny_gguf.h"
#include "demo/tiny_sd.h"
#include "demo/tiny_whisper.h"
#include "hub/hub_settings.h"

namespace allm {

namespace fs = std::filesystem;

namespace {

// Writes a demo model once; later starts reuse the file.
template <typename Write>
bool ensure_demo_file(const fs::path& path, const char* what, Write write) {
  if (fs::exists(path)) return true;
  std::string error;
  if (!write(path.string(), &error)) {
    ALLM_LOG_ERROR("cannot create the demo %s model: %s", what, error.c_str());
    return false;
  }
  ALLM_LOG_INFO("created the demo %s model %s (random weights: its output is gibberish)", what,
                path.c_str());
  return true;
}

// With no models configured, serve generated demo models so the server is usable at once.
bool add_demo_models(ServeOptions& options) {
  const fs::path dir = fs::path(options.data_dir) / "demo";
  const fs::path text = dir / "demo-text.gguf";
  const fs::path audio = dir / "demo-whisper.bin";
  std::error_code ec;
  fs::create_directories(dir, ec);
  const bool text_ok = ensure_demo_file(text, "text", [](const std::string& path, std::string* e) {
    TinyLlamaSpec spec;
    spec.name = "allm-demo-text";
    spec.n_embd = 128;
    spec.n_layer = 4;
    spec.n_ff = 256;
    return write_tiny_llama_gguf(path, spec, e);
  });
  const bool audio_ok =
      ensure_demo_file(audio, "audio", [](const std::string& path, std::string* e) {
        return write_tiny_whisper_bin(path, TinyWhisperSpec{}, e);
      });
  const fs::path image = dir / "demo-image" / "model.safetensors";
  const bool image_ok =
      ensure_demo_file(image, "image", [](const std::string& path, std::string* e) {
        return write_tiny_sd(fs::path(path).parent_path().string(), TinySdSpec{}, e);
      });
  if (!text_ok || !audio_ok || !image_ok) return false;
  options.models.push_back({"demo-text", text, ModelFormat::GGUF, Modality::TEXT, std::nullopt});
  options.models.push_back({"demo-whisper", audio, std::nullopt, Modality::AUDIO, std::nullopt});
  options.models.push_back({"demo-image", image, std::nullopt, Modality::IMAGE, std::nullopt});
  ALLM_LOG_INFO(
      "no models configured: serving the demo models 'demo-text', 'demo-whisper' and "
      "'demo-image'. To serve real models, put .gguf files, whisper .bin files, Stable Diffusion "
      ".safetensors checkpoints or Hugging Face folders in %s, or pass "
      "--model NAME=PATH (see allm serve --help)",
      options.models_dir.c_str());
  return true;
}

// Threads per engine: --threads, or what the machine's cores allow (core/cpu_threads.h).
void apply_thread_plan(ServeOptions* options) {
  const CpuCount cpus = count_cpus();
  const ThreadPlan plan =
      plan_threads(cpus, options->text.threads, options->audio.parallel, options->images.parallel);
  options->text.threads = plan.text;
  options->audio.threads = plan.audio_per_job;
  options->images.threads = plan.image_per_job;
  ALLM_LOG_INFO("CPU threads: %s (%d physical cores, %d logical CPUs available; --threads)",
                plan.describe().c_str(), cpus.physical, cpus.logical);
}

// Requests the managers may hold at once, running or waiting, for the models registered now.
int queued_capacity(const ServeOptions& options, ModelRegistry& registry) {
  int text_models = 0;
  for (const ModelEntry& entry : registry.list()) text_models += entry.modality == Modality::TEXT;
  return std::max(1, text_models) * (options.text.parallel + options.text.queue_size) +
         options.audio.parallel + options.audio.queue + options.images.parallel +
         options.images.queue;
}

// The HTTP server's configuration, with --max-connections sized when it was left at 0.
ServerConfig server_config(const ServeOptions& options, ModelRegistry& registry) {
  ServerConfig config = options.server;
  if (config.max_connections == 0)
    config.max_connections = connection_limit_for(queued_capacity(options, registry));
  ALLM_LOG_INFO("serving up to %d connections at once (--max-connections)", config.max_connections);
  return config;
}

// The RPC workers' devices joined to ggml's before any model is placed; false when one does not
// answer (a server that cannot place its models where it was told to does not start).
bool register_workers(const std::vector<std::string>& endpoints) {
  if (endpoints.empty()) return true;
  std::vector<std::string> devices;
  if (Error error = register_rpc_workers(endpoints, &devices)) {
    ALLM_LOG_ERROR("%s", error.message.c_str());
    return false;
  }
  std::string names;
  for (const std::string& device : devices) names += (names.empty() ? "" : ",") + device;
  ALLM_LOG_INFO("%zu RPC worker(s), devices %s", endpoints.size(), names.c_str());
  return true;
}

}  // namespace

std::unique_ptr<ServerInstance> ServerInstance::create(ServeOptions options) {
  apply_thread_plan(&options);
  std::error_code ec;
  fs::create_directories(options.data_dir, ec);
  if (ec) {
    ALLM_LOG_ERROR("cannot create the data dir %s: %s", options.data_dir.c_str(),
                   ec.message().c_str());
    return nullptr;
  }
  if (!pull_hub_models(options.hub_models)) return nullptr;
  if (options.demo && options.hub_models.empty() &&
      ModelRegistry(options.models_dir, options.models).empty() && !add_demo_models(options)) {
    return nullptr;
  }
  StoreLocation location;
  std::string why;
  parse_store_location(options.store_location,
                       (fs::path(options.data_dir) / "responses.db").string(), &location, &why);
  ALLM_LOG_INFO("response store: %s", describe(location).c_str());
  Error error;
  auto store = open_response_store(location, options.store, &error);
  if (!store) {
    ALLM_LOG_ERROR("%s", error.message.c_str());
    return nullptr;
  }
  store->start_pruning();
  return std::unique_ptr<ServerInstance>(new ServerInstance(std::move(options), std::move(store)));
}

ServerInstance::ServerInstance(ServeOptions options, std::unique_ptr<ResponseStore> store)
    : options_(std::move(options)),
      registry_(options_.models_dir, options_.models, options_.quantization,
                hub_cache_dir_from_env()),
      store_(std::move(store)),
      conversations_(*store_),
      lifecycle_(options_.lifecycle, machine_memory_),
      text_(registry_, lifecycle_, options_.text),
      audio_(registry_, lifecycle_, options_.audio),
      images_(registry_, lifecycle_, options_.images),
      server_(ApiContext{registry_, lifecycle_, text_, conversations_, background_, audio_, images_,
                         readiness_},
              server_config(options_, registry_)) {
  ALLM_LOG_INFO("%zu model(s) registered from %s, the Hub cache %s and --model",
                registry_.list().size(), options_.models_dir.c_str(),
                hub_cache_dir_from_env().c_str());
}

ServerInstance::~ServerInstance() {
  stop();
  wait();
}

// --preload goes to the manager of the model's modality.
bool ServerInstance::preload() {
  for (const std::string& id : options_.preload) {
    auto entry = registry_.find(id);
    Error e;
    if (entry && entry->modality == Modality::AUDIO) {
      e = audio_.preload(id);
    } else if (entry && entry->modality == Modality::IMAGE) {
      e = images_.preload(id);
    } else {
      e = text_.preload(id);
    }
    if (e) {
      ALLM_LOG_ERROR("--preload %s: %s", id.c_str(), e.message.c_str());
      return false;
    }
  }
  return true;
}

bool ServerInstance::start() {
  if (!server_.bind()) return false;
  serving_ = true;
  http_ = std::thread([this] {
    served_ok_ = server_.listen();
    serving_ = false;
  });
  // Serving already, so that GET /health/ready says "starting" meanwhile.
  if (!register_workers(options_.rpc_workers) || !preload()) {
    stop();
    wait();
    return false;
  }
  readiness_.ready();
  return true;
}

void ServerInstance::cancel_all() {
  text_.cancel_all();
  audio_.cancel_all();
  images_.cancel_all();
}

bool ServerInstance::wait() {
  if (http_.joinable()) http_.join();
  return served_ok_;
}

}  // namespace allm
