#include "cli/signals.h"

#include <pthread.h>

namespace allm {

sigset_t block_shutdown_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int wait_for_signal(const sigset_t& set, const std::function<bool()>& keep_waiting,
                    std::chrono::steady_clock::time_point until) {
  while (keep_waiting() && std::chrono::steady_clock::now() < until) {
    timespec tick{0, 100 * 1000 * 1000};
    const int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig > 0) return sig;
  }
  return 0;
}

}  // namespace allm
