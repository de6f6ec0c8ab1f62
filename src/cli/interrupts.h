// Ctrl-C (SIGINT) and SIGTERM for `allm run`: blocked in every thread and taken by a thread of
// their own, which stops the answer being streamed and wakes the prompt.
#pragma once

#include <signal.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>

namespace allm {

class Interrupts {
 public:
  // Create it before any other thread starts (they inherit the blocked signals).
  Interrupts();
  ~Interrupts();
  Interrupts(const Interrupts&) = delete;
  Interrupts& operator=(const Interrupts&) = delete;

  // While set, each signal also calls `stop` (on the signal thread): it ends an answer.
  void set_stopper(std::function<void()> stop);
  void clear_stopper() { set_stopper(nullptr); }
  // Readable while a signal is pending: poll it beside stdin.
  int fd() const { return pipe_[0]; }
  // Consumes the pending signals; whether there was one.
  bool take();
  // Whether SIGTERM came: the program should end.
  bool terminated() const { return terminated_; }

 private:
  void listen();

  sigset_t signals_;
  int pipe_[2] = {-1, -1};
  std::mutex mutex_;
  std::function<void()> stopper_;
  std::atomic<bool> terminated_{false};
  std::atomic<bool> quit_{false};
  std::thread thread_;
};

}  // namespace allm
