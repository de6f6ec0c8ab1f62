// The threads that serve HTTP connections. httplib keeps a connection on one thread while it is
// open, so a request can reach its handler (and be admitted, queued or refused with 429 by its
// manager) only once its connection has a thread: the pool starts one for every connection that
// finds none idle, up to a limit, and lets threads beyond the first few end after idling.
// (httplib's own pool decides from a count of idle threads that lags behind a burst, so most of
// a burst of connections waited for a busy thread.)
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

#include "httplib.h"

namespace allm {

class ConnectionPool final : public httplib::TaskQueue {
 public:
  using Clock = std::chrono::steady_clock;

  // `on_accept` runs on the serving thread first, with the time the connection was queued.
  ConnectionPool(size_t max_threads, std::function<void(Clock::time_point)> on_accept,
                 std::chrono::milliseconds idle_exit = std::chrono::seconds(30));
  ~ConnectionPool() override;

  bool enqueue(std::function<void()> serve_connection) override;
  // Serves what is queued, then joins every thread.
  void shutdown() override;

  size_t threads();  // running now

 private:
  using Threads = std::list<std::thread>;
  struct Job {
    std::function<void()> serve;
    Clock::time_point accepted;
  };
  static constexpr size_t kKeptThreads = 8;

  void work(Threads::iterator self);
  // Moves the calling thread to finished_ and joins the one there before it.
  void end_idle_thread(Threads::iterator self, std::unique_lock<std::mutex>& lock);

  const size_t max_threads_;
  const std::function<void(Clock::time_point)> on_accept_;
  const std::chrono::milliseconds idle_exit_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Job> jobs_;
  Threads threads_;   // running
  Threads finished_;  // ended after idling, joined by the next one to end or by shutdown()
  size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace allm
