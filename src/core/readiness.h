// Whether this server should be sent traffic (GET /health/ready, for load balancers and
// orchestrators; GET /health only says the process answers): not while it starts (joining its RPC
// workers, loading the --preload models) and not once it shuts down.
#pragma once

#include <atomic>

namespace allm {

class Readiness {
 public:
  enum class Phase { STARTING, READY, STOPPING };

  // Start-up done; a server already shutting down stays so.
  void ready() {
    Phase starting = Phase::STARTING;
    phase_.compare_exchange_strong(starting, Phase::READY);
  }
  void stopping() { phase_ = Phase::STOPPING; }
  Phase phase() const { return phase_.load(); }
  // "starting", "ready", "stopping": the status GET /health/ready reports.
  static const char* name(Phase phase) {
    switch (phase) {
      case Phase::STARTING: return "starting";
      case Phase::READY: return "ready";
      case Phase::STOPPING: return "stopping";
    }
    return "stopping";
  }

 private:
  std::atomic<Phase> phase_{Phase::STARTING};
};

}  // namespace allm
