// What `allm serve` runs, built from its options: the model registry, the response store, the
// managers and the HTTP server. `allm serve` runs one until a signal; `allm run` starts one in
// its own process when no server answers.
#pragma once

#include <atomic>
#include <memory>
#include <thread>

#include "api/server.h"
#include "cli/serve_options.h"
#include "core/background_jobs.h"
#include "core/conversation_service.h"
#include "core/readiness.h"

namespace allm {

class ServerInstance {
 public:
  // Everything but the listening socket; nullptr when the data dir, the demo models or the response
  // store fails (logged). `options.server.port` 0: a free port (see port()).
  static std::unique_ptr<ServerInstance> create(ServeOptions options);
  ~ServerInstance();

  // Binds the address and serves on a thread of its own until stop(), then joins the RPC workers
  // and loads the --preload models (GET /health/ready says "starting" until then); false, with
  // the server stopped, when the address cannot be bound or a worker or a --preload fails.
  bool start();
  int port() const { return server_.port(); }
  // Whether the HTTP server is still serving (it may stop by itself on an error).
  bool serving() const { return serving_; }
  // Not ready any more, and no new connections; requests already running go on.
  void stop() {
    readiness_.stopping();
    server_.stop();
  }
  // Ends every running text, audio and image job with CANCELLED.
  void cancel_all();
  // Waits for the server thread; whether it served without an error.
  bool wait();

 private:
  ServerInstance(ServeOptions options, std::unique_ptr<ResponseStore> store);
  bool preload();

  ServeOptions options_;
  ModelRegistry registry_;
  std::unique_ptr<ResponseStore> store_;
  ConversationService conversations_;
  // Declared before the managers, so that it outlives them: it holds their loaded models.
  MachineMemory machine_memory_;
  ModelLifecycle lifecycle_;
  TextManager text_;
  AudioManager audio_;
  ImageManager images_;
  // Background responses: declared after the managers, so that their jobs are cancelled and
  // waited for (and store how they ended) before the models go.
  BackgroundJobs background_;
  Readiness readiness_;  // before server_, whose routes read it
  ApiServer server_;
  std::atomic<bool> serving_{false};
  bool served_ok_ = false;
  std::thread http_;
};

}  // namespace allm
