// `allm serve`: builds the managers and the API server from the options and runs until a signal.
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "api/server.h"
#include "base/log.h"
#include "base/rpc_workers.h"
#include "cli/commands.h"
#include "cli/pull.h"
#include "cli/serve_options.h"
#include "core/background_jobs.h"
#include "core/conversation_service.h"
#include "core/cpu_threads.h"
#include "core/response_store.h"
#include "demo/tiny_gguf.h"
#include "demo/tiny_sd.h"
#include "demo/tiny_whisper.h"
#include "hub/hub_settings.h"

namespace allm {

namespace fs = std::filesystem;

namespace {

// SIGINT and SIGTERM are blocked in every thread (before any is started) and taken by the main
// thread with sigtimedwait, so shutdown runs as ordinary code rather than in a signal handler.
sigset_t block_shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

// Waits for a shutdown signal while `running` holds; the signal number, or 0 when `running`
// turned false first (the server stopped by itself) or the time ran out.
int wait_for_signal(const sigset_t& set, const std::atomic<bool>& running,
                    std::chrono::steady_clock::time_point until) {
  while (running && std::chrono::steady_clock::now() < until) {
    timespec tick{0, 100 * 1000 * 1000};
    const int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig > 0) return sig;
  }
  return 0;
}

// A second signal: exit now, without waiting for anything (a cancelled job may still be unwinding
// a long step or a model load). The status is the shell's for death by that signal.
[[noreturn]] void exit_now(int signal_number) {
  ALLM_LOG_WARN("second signal (%s): exiting now", signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  std::_Exit(128 + signal_number);
}

// Stop accepting, let running requests finish within the grace period, then cancel them; a second
// signal at any point exits at once.
void shut_down(ApiServer& server, TextManager& text, AudioManager& audio, ImageManager& images,
               const sigset_t& signals, const std::atomic<bool>& running, int signal_number,
               int grace_seconds) {
  ALLM_LOG_INFO(
      "%s received: no new connections; running requests may finish within %d s "
      "(--shutdown-grace; a second signal exits at once)",
      signal_number == SIGINT ? "SIGINT" : "SIGTERM", grace_seconds);
  server.stop();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(grace_seconds);
  if (const int again = wait_for_signal(signals, running, deadline)) exit_now(again);
  if (!running) return;
  ALLM_LOG_WARN("grace period over: cancelling the requests still running");
  text.cancel_all();
  audio.cancel_all();
  images.cancel_all();
  if (const int again =
          wait_for_signal(signals, running, std::chrono::steady_clock::time_point::max())) {
    exit_now(again);
  }
}

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

// --preload goes to the manager of the model's modality.
Error preload_model(ModelRegistry& registry, TextManager& text, AudioManager& audio,
                    ImageManager& images, const std::string& id) {
  auto entry = registry.find(id);
  if (entry && entry->modality == Modality::AUDIO) return audio.preload(id);
  if (entry && entry->modality == Modality::IMAGE) return images.preload(id);
  return text.preload(id);
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

int run_serve(int argc, char** argv) {
  ServeOptions options;
  std::string problem;
  bool show_help = false;
  if (!parse_serve_options(argc, argv, &options, &problem, &show_help)) {
    std::fprintf(stderr, "allm serve: %s\n", problem.c_str());
    return 2;
  }
  if (show_help) {
    std::fputs(serve_help().c_str(), stdout);
    return 0;
  }
  apply_thread_plan(&options);
  std::signal(SIGPIPE, SIG_IGN);
  // A file-size limit (ulimit -f) fails the write that passes it, which the response store
  // reports, instead of killing the server.
  std::signal(SIGXFSZ, SIG_IGN);
  const sigset_t signals = block_shutdown_signals();
  std::error_code ec;
  fs::create_directories(options.data_dir, ec);
  if (ec) {
    ALLM_LOG_ERROR("cannot create the data dir %s: %s", options.data_dir.c_str(),
                   ec.message().c_str());
    return 1;
  }
  if (!pull_hub_models(options.hub_models)) return 1;
  if (options.demo && options.hub_models.empty() &&
      ModelRegistry(options.models_dir, options.models).empty() && !add_demo_models(options)) {
    return 1;
  }
  if (!register_workers(options.rpc_workers)) return 1;
  ModelRegistry registry(options.models_dir, options.models, options.quantization,
                         hub_cache_dir_from_env());
  ALLM_LOG_INFO("%zu model(s) registered from %s, the Hub cache %s and --model",
                registry.list().size(), options.models_dir.c_str(),
                hub_cache_dir_from_env().c_str());

  Error error;
  auto store = ResponseStore::open((fs::path(options.data_dir) / "responses.db").string(), &error,
                                   options.store);
  if (!store) {
    ALLM_LOG_ERROR("%s", error.message.c_str());
    return 1;
  }
  store->start_pruning();
  ConversationService conversations(*store);
  // Declared before the managers, so that it outlives them: it holds their loaded models.
  MachineMemory machine_memory;
  ModelLifecycle lifecycle(options.lifecycle, machine_memory);
  TextManager text(registry, lifecycle, options.text);
  AudioManager audio(registry, lifecycle, options.audio);
  ImageManager images(registry, lifecycle, options.images);
  for (const std::string& id : options.preload) {
    if (Error e = preload_model(registry, text, audio, images, id)) {
      ALLM_LOG_ERROR("--preload %s: %s", id.c_str(), e.message.c_str());
      return 1;
    }
  }
  if (options.server.max_connections == 0) {
    options.server.max_connections = connection_limit_for(queued_capacity(options, registry));
  }
  ALLM_LOG_INFO("serving up to %d connections at once (--max-connections)",
                options.server.max_connections);
  // Background responses: declared after the managers, so that their jobs are cancelled and
  // waited for (and store how they ended) before the models go.
  BackgroundJobs background;
  ApiServer server(ApiContext{registry, lifecycle, text, conversations, background, audio, images},
                   options.server);
  std::atomic<bool> running{true};
  bool ok = false;
  std::thread http([&] {
    ok = server.run();
    running = false;
  });
  const int signal_number =
      wait_for_signal(signals, running, std::chrono::steady_clock::time_point::max());
  if (signal_number) {
    shut_down(server, text, audio, images, signals, running, signal_number,
              options.shutdown_grace_seconds);
  }
  http.join();
  ALLM_LOG_INFO("server stopped");
  return ok ? 0 : 1;
}

}  // namespace allm
