// The HTTP layer as a whole: the input is what a client sends on one connection (one request or
// several, pipelined) to a real server running in this process: httplib's request parsing,
// routing, the API key check, body parsing, every endpoint's validation, the managers with tiny
// demo models (text, whisper), generation, streaming and error formatting. A crash or sanitizer
// report is a finding, and so is a 500 (an exception no handler turned into a request error).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <thread>

#include "../fuzz_util.h"
#include "api/server.h"
#include "core/audio_manager.h"
#include "core/background_jobs.h"
#include "core/conversation_service.h"
#include "core/free_memory.h"
#include "core/image_manager.h"
#include "core/model_lifecycle.h"
#include "core/model_registry.h"
#include "core/readiness.h"
#include "core/response_store.h"
#include "core/text_manager.h"
#include "demo/tiny_gguf.h"
#include "demo/tiny_whisper.h"

namespace {

namespace fs = std::filesystem;
using namespace allm;

constexpr const char* kApiKey = "sk-fuzz";  // inputs may send it or not

int unused_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    fuzz::fail("no free port");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

std::vector<ModelEntry> write_models() {
  const fs::path dir = fuzz::scratch_dir();
  std::string error;
  TinyLlamaSpec text;
  text.n_embd = 64;
  text.n_layer = 2;
  text.n_ff = 128;
  if (!write_tiny_llama_gguf((dir / "text.gguf").string(), text, &error) ||
      !write_tiny_whisper_bin((dir / "whisper.bin").string(), TinyWhisperSpec{}, &error)) {
    fuzz::fail("cannot write the demo models");
  }
  return {{"tiny", dir / "text.gguf", ModelFormat::GGUF, Modality::TEXT},
          {"whisper", dir / "whisper.bin", std::nullopt, Modality::AUDIO}};
}

// Everything `allm serve` builds, with small limits so that each input is answered quickly.
struct Served {
  ModelRegistry registry{fuzz::scratch_dir() / "models", write_models()};
  MachineMemory memory;
  ModelLifecycle lifecycle{LifecycleConfig{}, memory};
  TextManager text{registry, lifecycle, [] {
                     TextManagerConfig c;
                     c.ctx_size = 256;
                     c.parallel = 2;
                     c.threads = 1;
                     c.queue_size = 4;
                     c.request_timeout_seconds = 5;
                     c.max_output_tokens = 4;
                     return c;
                   }()};
  AudioManager audio{registry, lifecycle, [] {
                       AudioManagerConfig c;
                       c.parallel = 1;
                       c.max_audio_seconds = 2;
                       c.timeout_seconds = 5;
                       c.threads = 1;
                       return c;
                     }()};
  ImageManager images{registry, lifecycle, ImageManagerConfig{}};
  std::unique_ptr<ResponseStore> store;
  std::unique_ptr<ConversationService> conversations;
  BackgroundJobs background;  // goes before the conversations and managers its jobs use
  Readiness readiness;
  std::unique_ptr<ApiServer> server;
  std::thread thread;
  int port = unused_port();

  Served() {
    Error error;
    store = ResponseStore::open(":memory:", &error);
    if (!store) fuzz::fail("cannot open an in-memory response store");
    conversations = std::make_unique<ConversationService>(*store);
    ServerConfig config;
    config.port = port;
    config.max_body_bytes = 1 << 20;
    config.max_connections = 16;
    config.api_keys = {kApiKey};
    config.cors_origins = {"https://app.example"};
    server = std::make_unique<ApiServer>(
        ApiContext{registry, lifecycle, text, *conversations, background, audio, images, readiness},
        config);
    thread = std::thread([this] { server->run(); });
    for (int i = 0; i < 200 && !reachable(); ++i) usleep(10000);
  }

  bool reachable() const {
    const int fd = connect_to();
    if (fd < 0) return false;
    close(fd);
    return true;
  }

  int connect_to() const {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }
};

Served& served() {
  static Served* instance = new Served();  // lives until exit: its threads serve every input
  return *instance;
}

// Whether `fd` has something to read (or its end) within 120 s. Generous: a connection may carry
// many pipelined requests, each answered in turn (a transcription's whisper state alone takes a
// good part of a second in this build). libFuzzer's timeout alarm (SIGALRM every -timeout/2 s)
// interrupts poll, which is never restarted: an interrupted wait goes on with the time left.
bool wait_readable(int fd) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(120);
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left));
    if (ready > 0) return true;
    if (ready == 0 || errno != EINTR) return false;
  }
}

// Sends `bytes`, closes the sending side and reads everything the server answers.
std::string exchange(const uint8_t* data, size_t size) {
  const int fd = served().connect_to();
  if (fd < 0) fuzz::fail("the server stopped accepting connections");
  for (size_t sent = 0; sent < size;) {
    const ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the server may close early (a bad request line)
    sent += static_cast<size_t>(n);
  }
  shutdown(fd, SHUT_WR);
  std::string answer;
  char buffer[16384];
  for (;;) {
    if (!wait_readable(fd)) fuzz::fail("no answer within 120 s");
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    answer.append(buffer, static_cast<size_t>(n));
  }
  // Closed with a reset: hundreds of connections a second would otherwise leave as many server
  // ends in TIME_WAIT, and a new connection that lands on one of their port pairs can stall.
  const linger reset{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  close(fd);
  return answer;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The first answer's status line (a later one could only be found by parsing the bodies, which
  // may quote the client).
  const std::string answer = exchange(data, size);
  if (answer.compare(0, 12, "HTTP/1.1 500") == 0) fuzz::fail("a 500 answer");
  return 0;
}
