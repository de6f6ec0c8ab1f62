#include "cli/serve_options.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>

#include "base/byte_size.h"
#include "base/rpc_workers.h"
#include "core/cpu_threads.h"
#include "core/memory_plan.h"
#include "core/store_location.h"

namespace allm {

namespace {

std::string home_path(const std::string& rest) {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/" + rest;
}

bool parse_int(const std::string& text, long lo, long hi, long* out) {
  char* end = nullptr;
  const long v = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

// Below this the schema alone takes a good part of --store-max-bytes.
constexpr uint64_t kMinStoreBytes = 64 * 1024;

// An http(s) URL with a host, kept without its trailing '/' (paths are appended to it).
std::string parse_public_url(std::string url, std::string* problem) {
  const size_t scheme_end = url.find("://");
  const std::string scheme = url.substr(0, scheme_end);
  const bool has_host =
      scheme_end != std::string::npos && url.size() > scheme_end + 3 && url[scheme_end + 3] != '/';
  const bool printable =
      std::all_of(url.begin(), url.end(), [](char c) { return c > ' ' && c < 0x7F; });
  if ((scheme != "http" && scheme != "https") || !has_host || !printable) {
    *problem =
        "expected an http:// or https:// URL such as https://ai.example.com, got '" + url + "'";
    return "";
  }
  while (url.back() == '/') url.pop_back();
  return url;
}

struct Option {
  const char* flag;
  const char* env;
  const char* value_name;
  const char* help;
  // Applies one value; returns an error message or "".
  std::function<std::string(ServeOptions&, const std::string&)> apply;
};

// "A,B,..." into non-negative proportions, at least one of them positive; "" when it parses, else
// the problem.
std::string parse_tensor_split(const std::string& text, std::vector<float>* split) {
  split->clear();
  const std::string problem =
      "expected proportions like 3,1 (non-negative numbers, one per device, not all 0), got '" +
      quote_excerpt(text) + "'";
  size_t start = 0;
  float total = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    char* end = nullptr;
    const float value = std::strtof(item.c_str(), &end);
    if (item.empty() || *end != '\0' || !std::isfinite(value) || value < 0) return problem;
    split->push_back(value);
    total += value;
    start = comma + 1;
  }
  return total > 0 ? "" : problem;
}

std::function<std::string(ServeOptions&, const std::string&)> int_setter(
    long lo, long hi, std::function<void(ServeOptions&, long)> set) {
  return [lo, hi, set](ServeOptions& o, const std::string& value) -> std::string {
    long v;
    if (!parse_int(value, lo, hi, &v)) {
      return "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
             "], got '" + value + "'";
    }
    set(o, v);
    return "";
  };
}

// Seconds may be fractional (a time limit of 0.5 s is meaningful for short jobs).
std::function<std::string(ServeOptions&, const std::string&)> seconds_setter(
    double lo, double hi, std::function<void(ServeOptions&, double)> set) {
  return [lo, hi, set](ServeOptions& o, const std::string& value) -> std::string {
    char* end = nullptr;
    const double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !(v >= lo && v <= hi)) {
      return "expected seconds in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" +
             value + "'";
    }
    set(o, v);
    return "";
  };
}

const std::vector<Option>& options_table() {
  static const std::vector<Option> table = {
      {"--host", "ALLM_HOST", "ADDR", "address to listen on (default 127.0.0.1)",
       [](ServeOptions& o, const std::string& v) {
         o.server.host = v;
         return std::string();
       }},
      {"--port", "ALLM_PORT", "N", "port to listen on (default 8080)",
       int_setter(1, 65535, [](ServeOptions& o, long v) { o.server.port = static_cast<int>(v); })},
      {"--public-url", "ALLM_PUBLIC_URL", "URL",
       "the base URL clients reach this server at, e.g. https://ai.example.com behind a proxy; "
       "image responses with response_format 'url' point there (default: the listening address, "
       "http://HOST:PORT)",
       [](ServeOptions& o, const std::string& v) {
         std::string problem;
         o.server.public_url = parse_public_url(v, &problem);
         return problem;
       }},
      {"--models-dir", "ALLM_MODELS_DIR", "DIR",
       "every .gguf file, whisper .bin file and folder in DIR is a model (default ~/.allm/models)",
       [](ServeOptions& o, const std::string& v) {
         o.models_dir = v;
         return std::string();
       }},
      {"--model", "ALLM_MODEL", "NAME=PATH[:gguf|:safetensors[:QUANT]] or ORG/NAME[:QUANT]",
       "register a model; the suffix picks the format when PATH holds both, and QUANT (none, "
       "q8_0, q4_0, q4_k) quantizes a safetensors model on load; ORG/NAME is a Hugging Face "
       "Hub model, pulled at start when not in the cache (repeatable; the environment "
       "variable takes a comma-separated list)",
       [](ServeOptions& o, const std::string& v) {
         std::string problem;
         std::error_code ec;
         if (v.find('=') == std::string::npos && !std::filesystem::exists(v, ec)) {
           if (auto spec = parse_repo_spec(v, &problem)) o.hub_models.push_back(*spec);
           if (!problem.empty() && v.find('/') == std::string::npos) {
             problem =
                 "expected NAME=PATH[:gguf|:safetensors[:QUANT]] or a Hub model "
                 "ORG/NAME[@REVISION][:QUANT], got '" +
                 v + "'";
           }
           return problem;
         }
         auto entry = parse_model_spec(v, &problem);
         if (entry) o.models.push_back(*entry);
         return problem;
       }},
      {"--quantize", "ALLM_QUANTIZE", "TYPE",
       "quantize safetensors models whose --model names no QUANT on load: none, q8_0, q4_0 or "
       "q4_k (default none: as stored)",
       [](ServeOptions& o, const std::string& v) {
         const std::optional<Quantization> q = parse_quantization(v);
         if (q) o.quantization = *q;
         return q ? std::string()
                  : "expected " + std::string(kQuantizationNames) + ", got '" + v + "'";
       }},
      {"--preload", "ALLM_PRELOAD", "NAME", "load this model at start-up (repeatable)",
       [](ServeOptions& o, const std::string& v) {
         o.preload.push_back(v);
         return std::string();
       }},
      {"--ctx-size", "ALLM_CTX_SIZE", "N", "context tokens per request (default 4096)",
       int_setter(16, 1 << 22,
                  [](ServeOptions& o, long v) { o.text.ctx_size = static_cast<int>(v); })},
      {"--gpu-layers", "ALLM_GPU_LAYERS", "N",
       "decoder layers of each text model on the GPU, counted from the last, as llama.cpp's "
       "-ngl; -1 (default): all of them and the output head; 0: none. GGUF and safetensors "
       "models alike; without a GPU in the build everything runs on the CPU",
       int_setter(-1, 100000,
                  [](ServeOptions& o, long v) { o.text.gpu_layers = static_cast<int>(v); })},
      {"--device", "ALLM_DEVICE", "NAME",
       "the ggml devices text models split their layers over, comma-separated (e.g. CUDA0, "
       "Vulkan0,Vulkan1; default: every GPU, in proportion to free memory, as llama.cpp's "
       "--split-mode layer); image models use the first; 'none': the CPU only",
       [](ServeOptions& o, const std::string& v) {
         o.text.device = v;
         o.images.device = v;
         return std::string();
       }},
      {"--tensor-split", "ALLM_TENSOR_SPLIT", "A,B,...",
       "the proportions of the offloaded layers each device gets, one per device in --device's "
       "order (e.g. 3,1; as llama.cpp's --tensor-split); default: in proportion to free memory",
       [](ServeOptions& o, const std::string& v) {
         return parse_tensor_split(v, &o.text.tensor_split);
       }},
      {"--rpc", "ALLM_RPC", "HOST:PORT[,...]",
       "ggml RPC workers (`allm rpc-server`, or llama.cpp's rpc-server) whose devices join this "
       "server's as RPC0, RPC1, ...: models place layers on them as on local GPUs (--device, "
       "--gpu-layers, --tensor-split). A worker that does not answer at start stops the server; "
       "one lost during a request fails it (INTERNAL) and its model is loaded again by the next "
       "request; loads fail while it is gone (LOAD_FAILED). RPC is unauthenticated: private "
       "networks only",
       [](ServeOptions& o, const std::string& v) {
         std::string problem;
         parse_rpc_endpoints(v, &o.rpc_workers, &problem);
         return problem;
       }},
      {"--vae-tiling", "ALLM_VAE_TILING", "MODE",
       "decode images in overlapping 512-pixel tiles: auto (default: on a GPU when the whole "
       "image's decode does not fit in its free memory; never on the CPU), on (every image "
       "larger than a tile), off",
       [](ServeOptions& o, const std::string& v) {
         const std::optional<VaeTiling> tiling = parse_vae_tiling(v);
         if (tiling) o.images.vae_tiling = *tiling;
         return tiling ? std::string() : "expected auto, on or off, got '" + v + "'";
       }},
      {"--parallel", "ALLM_PARALLEL", "N", "requests decoded together per text model (default 4)",
       int_setter(1, 256, [](ServeOptions& o, long v) { o.text.parallel = static_cast<int>(v); })},
      {"--threads", "ALLM_THREADS", "N",
       "CPU threads for inference, for every engine (default: one per physical core for text; "
       "audio and image jobs split the physical cores between their --audio-parallel / "
       "--image-parallel slots; the numbers chosen are logged at start-up)",
       int_setter(0, 1024,
                  [](ServeOptions& o, long v) {
                    o.text.threads = static_cast<int>(v);
                    o.audio.threads = static_cast<int>(v);
                    o.images.threads = static_cast<int>(v);
                  })},
      {"--audio-parallel", "ALLM_AUDIO_PARALLEL", "N", "transcriptions running at once (default 2)",
       int_setter(1, 64, [](ServeOptions& o, long v) { o.audio.parallel = static_cast<int>(v); })},
      {"--audio-queue", "ALLM_AUDIO_QUEUE", "N",
       "transcriptions waiting for a free slot; more get 429 (default 8)",
       int_setter(0, 4096, [](ServeOptions& o, long v) { o.audio.queue = static_cast<int>(v); })},
      {"--max-audio-seconds", "ALLM_MAX_AUDIO_SECONDS", "N",
       "longest audio accepted, longer uploads get 400 (default 1800)",
       int_setter(
           1, 86400,
           [](ServeOptions& o, long v) { o.audio.max_audio_seconds = static_cast<double>(v); })},
      {"--image-parallel", "ALLM_IMAGE_PARALLEL", "N",
       "image generations running at once (default 1)",
       int_setter(1, 64, [](ServeOptions& o, long v) { o.images.parallel = static_cast<int>(v); })},
      {"--image-queue", "ALLM_IMAGE_QUEUE", "N",
       "image generations waiting for a free slot; more get 429 (default 4)",
       int_setter(0, 4096, [](ServeOptions& o, long v) { o.images.queue = static_cast<int>(v); })},
      {"--image-timeout", "ALLM_IMAGE_TIMEOUT", "SECONDS",
       "time limit per image request, waiting included; past it 504 TIMEOUT (default 600)",
       seconds_setter(0.001, 86400,
                      [](ServeOptions& o, double v) { o.images.timeout_seconds = v; })},
      {"--image-max-size", "ALLM_IMAGE_MAX_SIZE", "PIXELS",
       "largest image width or height accepted (default 1024)",
       int_setter(64, 4096,
                  [](ServeOptions& o, long v) { o.images.max_side = static_cast<int>(v); })},
      {"--audio-timeout", "ALLM_AUDIO_TIMEOUT", "SECONDS",
       "time limit per transcription, waiting included; past it 504 TIMEOUT (default 600)",
       seconds_setter(0.001, 86400,
                      [](ServeOptions& o, double v) { o.audio.timeout_seconds = v; })},
      {"--data-dir", "ALLM_DATA_DIR", "DIR",
       "where stored responses and demo models live (default ~/.allm)",
       [](ServeOptions& o, const std::string& v) {
         o.data_dir = v;
         return std::string();
       }},
      {"--store", "ALLM_STORE", "LOCATION",
       "where stored responses live: sqlite:PATH, or postgres://USER[:PASSWORD]@HOST[:PORT]/DB "
       "(also postgresql://), a database several replicas share (default sqlite:DATA_DIR/"
       "responses.db)",
       [](ServeOptions& o, const std::string& v) {
         StoreLocation location;
         std::string why;
         if (!parse_store_location(v, "", &location, &why)) return why;
         o.store_location = v;
         return std::string();
       }},
      {"--store-max-age", "ALLM_STORE_MAX_AGE", "SECONDS",
       "delete stored responses older than this, checked at start and then every tenth of it "
       "(at least every second, at most every minute) (default 0: keep them)",
       seconds_setter(0, 1e10, [](ServeOptions& o, double v) { o.store.max_age_seconds = v; })},
      {"--store-max-bytes", "ALLM_STORE_MAX_BYTES", "SIZE",
       "keep the stored responses within SIZE (e.g. 2G, at least 64K): past it the oldest are "
       "deleted, in the background (default 0: no limit)",
       [](ServeOptions& o, const std::string& v) {
         uint64_t bytes = 0;
         if (!parse_byte_size(v, &bytes) || (bytes != 0 && bytes < kMinStoreBytes)) {
           return "expected 0 or a size of at least 64K such as 512M, got '" + v + "'";
         }
         o.store.max_bytes = bytes;
         return std::string();
       }},
      {"--max-body-bytes", "ALLM_MAX_BODY_BYTES", "N",
       "largest request body accepted, larger ones get 413 (default 33554432)",
       int_setter(
           1024, 1L << 34,
           [](ServeOptions& o, long v) { o.server.max_body_bytes = static_cast<size_t>(v); })},
      {"--max-connections", "ALLM_MAX_CONNECTIONS", "N",
       "connections served at once, each on its own thread while open; more wait to be read "
       "(default 0: every registered model's --parallel + --queue-size, audio and image slots "
       "and queues, plus 64; at least 256)",
       int_setter(0, 1 << 16,
                  [](ServeOptions& o, long v) { o.server.max_connections = static_cast<int>(v); })},
      {"--queue-size", "ALLM_QUEUE_SIZE", "N",
       "requests per text model waiting for a free sequence; more get 429 with Retry-After "
       "(default 64)",
       int_setter(0, 1 << 20,
                  [](ServeOptions& o, long v) { o.text.queue_size = static_cast<int>(v); })},
      {"--request-timeout", "ALLM_REQUEST_TIMEOUT", "SECONDS",
       "time limit per text request, waiting and loading included; past it 504 TIMEOUT, or an "
       "error event in a stream (default 600; 0: none)",
       int_setter(0, 1 << 24,
                  [](ServeOptions& o, long v) {
                    o.text.request_timeout_seconds = static_cast<double>(v);
                  })},
      {"--max-output-tokens", "ALLM_MAX_OUTPUT_TOKENS", "N",
       "largest max_output_tokens / max_tokens accepted (400 above it) and the limit when a "
       "request sets none (default 0: up to the context size)",
       int_setter(0, 1 << 24,
                  [](ServeOptions& o, long v) { o.text.max_output_tokens = static_cast<int>(v); })},
      {"--keep-alive", "ALLM_KEEP_ALIVE", "SECONDS",
       "unload a model (text, audio or image) after it has been idle (no running or queued "
       "request) this long; it reloads on the next request (default 0: keep loaded)",
       seconds_setter(0, 1 << 24,
                      [](ServeOptions& o, double v) { o.lifecycle.keep_alive_seconds = v; })},
      {"--max-memory", "ALLM_MAX_MEMORY", "SIZE|ram=SIZE,vram=SIZE",
       "memory budget for the loaded models of all modalities together, e.g. 16G (RAM), or "
       "ram=16G,vram=8G with a GPU: idle models are unloaded least recently used first to make "
       "room, and a model that cannot fit gets 507 OOM_RAM / OOM_VRAM (default 0: no budget; "
       "free RAM and free GPU memory are always checked)",
       [](ServeOptions& o, const std::string& v) {
         std::string problem;
         parse_memory_limits(v, &o.lifecycle.max_memory, &problem);
         return problem;
       }},
      {"--api-key", "ALLM_API_KEY", "KEY",
       "require 'Authorization: Bearer KEY' on /v1/* and /metrics (repeatable; the environment "
       "variable takes a comma-separated list); /health stays open",
       [](ServeOptions& o, const std::string& v) {
         if (v.empty()) return std::string("the key is empty");
         o.server.api_keys.push_back(v);
         return std::string();
       }},
      {"--cors-origin", "ALLM_CORS_ORIGIN", "ORIGIN",
       "allow browsers on ORIGIN (e.g. https://app.example.com, or *) to call the API; answers "
       "preflight OPTIONS requests (repeatable; comma-separated in the environment variable)",
       [](ServeOptions& o, const std::string& v) {
         o.server.cors_origins.push_back(v);
         return std::string();
       }},
      {"--shutdown-grace", "ALLM_SHUTDOWN_GRACE", "SECONDS",
       "on SIGTERM/SIGINT stop accepting connections and let running requests finish for this "
       "long, then cancel them; a second signal exits at once (default 30)",
       int_setter(0, 86400,
                  [](ServeOptions& o, long v) { o.shutdown_grace_seconds = static_cast<int>(v); })},
      {"--no-demo", "ALLM_NO_DEMO", "", "do not create demo models when none are configured",
       [](ServeOptions& o, const std::string& v) {
         o.demo = v == "0" || v == "false";
         return std::string();
       }},
  };
  return table;
}

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

std::string default_models_dir() {
  const char* dir = std::getenv("ALLM_MODELS_DIR");
  return dir && *dir ? dir : home_path(".allm/models");
}

bool parse_serve_options(int argc, char** argv, ServeOptions* options, std::string* problem,
                         bool* show_help) {
  options->models_dir = home_path(".allm/models");  // ALLM_MODELS_DIR is read below
  options->data_dir = home_path(".allm");
  *show_help = false;
  for (const Option& option : options_table()) {
    const char* value = std::getenv(option.env);
    if (!value) continue;
    const std::string flag = option.flag;
    const bool list =
        flag == "--model" || flag == "--preload" || flag == "--api-key" || flag == "--cors-origin";
    for (const std::string& item : list ? split_commas(value) : std::vector<std::string>{value}) {
      std::string error = option.apply(*options, item);
      if (!error.empty()) {
        *problem = std::string(option.env) + ": " + error;
        return false;
      }
    }
  }
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      *show_help = true;
      return true;
    }
    std::string inline_value;
    const bool has_inline = arg.find('=') != std::string::npos && arg.rfind("--", 0) == 0;
    if (has_inline) {
      inline_value = arg.substr(arg.find('=') + 1);
      arg = arg.substr(0, arg.find('='));
    }
    const Option* match = nullptr;
    for (const Option& option : options_table()) {
      if (arg == option.flag) match = &option;
    }
    if (!match) {
      *problem = "unknown option '" + arg + "' (see allm serve --help)";
      return false;
    }
    std::string value = "1";
    if (*match->value_name) {
      if (has_inline) {
        value = inline_value;
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        *problem = std::string(match->flag) + " needs a value";
        return false;
      }
    }
    std::string error = match->apply(*options, value);
    if (!error.empty()) {
      *problem = std::string(match->flag) + ": " + error;
      return false;
    }
  }
  return true;
}

std::string serve_help() {
  std::string out =
      "usage: allm serve [options]\n\n"
      "Serves the OpenAI-compatible API (/v1/responses, /v1/chat/completions, /v1/embeddings,\n"
      "/v1/audio/transcriptions, /v1/audio/translations, /v1/images/generations,\n"
      "/v1/images/edits, /v1/models).\n"
      "Every option can also be set by the environment variable shown.\n\n";
  for (const Option& option : options_table()) {
    std::string left = std::string("  ") + option.flag;
    if (*option.value_name) left += std::string(" ") + option.value_name;
    out += left + "\n      " + option.help + "  [" + option.env + "]\n";
  }
  const CpuCount cpus = count_cpus();
  out += "\nDefault threads here (" + std::to_string(cpus.physical) + " physical cores, " +
         std::to_string(cpus.logical) + " logical CPUs): " +
         plan_threads(cpus, 0, AudioManagerConfig{}.parallel, ImageManagerConfig{}.parallel)
             .describe() +
         "\n";
  return out;
}

}  // namespace allm
