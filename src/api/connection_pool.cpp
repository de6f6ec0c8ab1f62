#include "api/connection_pool.h"

#include <algorithm>

namespace allm {

ConnectionPool::ConnectionPool(size_t max_threads, std::function<void(Clock::time_point)> on_accept,
                               std::chrono::milliseconds idle_exit)
    : max_threads_(std::max<size_t>(1, max_threads)),
      on_accept_(std::move(on_accept)),
      idle_exit_(idle_exit) {}

ConnectionPool::~ConnectionPool() {
  shutdown();
}

bool ConnectionPool::enqueue(std::function<void()> serve_connection) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_) return false;
  jobs_.push_back({std::move(serve_connection), Clock::now()});
  // Every queued connection not matched by an idle thread gets a new one, up to the limit.
  if (jobs_.size() > idle_ && threads_.size() < max_threads_) {
    const Threads::iterator self = threads_.emplace(threads_.end());
    *self = std::thread([this, self] { work(self); });
  }
  ready_.notify_one();
  return true;
}

void ConnectionPool::work(Threads::iterator self) {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    ++idle_;
    const bool woken =
        ready_.wait_for(lock, idle_exit_, [this] { return !jobs_.empty() || stopping_; });
    --idle_;
    if (jobs_.empty()) {
      if (stopping_) return;
      if (!woken && threads_.size() > kKeptThreads) {
        end_idle_thread(self, lock);
        return;
      }
      continue;
    }
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    on_accept_(job.accepted);
    job.serve();
    lock.lock();
  }
}

void ConnectionPool::end_idle_thread(Threads::iterator self, std::unique_lock<std::mutex>& lock) {
  // The thread that ended before this one is joined here, outside the lock, so that neither the
  // accepting thread nor the lock ever waits for a thread to finish exiting.
  Threads previous;
  previous.splice(previous.end(), finished_);
  finished_.splice(finished_.end(), threads_, self);
  lock.unlock();
  for (std::thread& t : previous) t.join();
}

void ConnectionPool::shutdown() {
  Threads all;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    all.splice(all.end(), threads_);
    all.splice(all.end(), finished_);
  }
  ready_.notify_all();
  for (std::thread& t : all) {
    if (t.joinable()) t.join();
  }
}

size_t ConnectionPool::threads() {
  std::lock_guard<std::mutex> lock(mutex_);
  return threads_.size();
}

}  // namespace allm
