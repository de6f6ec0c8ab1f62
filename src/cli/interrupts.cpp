#include "cli/interrupts.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>

#include "cli/signals.h"

namespace allm {

Interrupts::Interrupts() : signals_(block_shutdown_signals()) {
  if (pipe(pipe_) == 0) {
    for (const int fd : pipe_) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  thread_ = std::thread([this] { listen(); });
}

Interrupts::~Interrupts() {
  quit_ = true;
  thread_.join();
  for (const int fd : pipe_) {
    if (fd >= 0) close(fd);
  }
}

void Interrupts::set_stopper(std::function<void()> stop) {
  std::lock_guard<std::mutex> lock(mutex_);
  stopper_ = std::move(stop);
}

bool Interrupts::take() {
  bool any = false;
  char buffer[64];
  while (read(pipe_[0], buffer, sizeof buffer) > 0) any = true;
  return any;
}

void Interrupts::listen() {
  for (;;) {
    const int signal_number = wait_for_signal(
        signals_, [this] { return !quit_; }, std::chrono::steady_clock::time_point::max());
    if (signal_number == 0) return;
    if (signal_number == SIGTERM) terminated_ = true;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopper_) stopper_();
    }
    const char mark = 1;
    [[maybe_unused]] const ssize_t written = write(pipe_[1], &mark, 1);
  }
}

}  // namespace allm
