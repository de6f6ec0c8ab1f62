// Work that outlives the request that started it (background responses of the Responses API):
// each job runs in a thread of its own under an id, can be cancelled by that id, and is cancelled
// and waited for when the registry goes (at shutdown, before the managers it uses).
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/error.h"

namespace allm {

class BackgroundJobs {
 public:
  // The job's work: it should end soon after `cancelled` turns true.
  using Work = std::function<void(const std::atomic<bool>& cancelled)>;

  BackgroundJobs() = default;
  BackgroundJobs(const BackgroundJobs&) = delete;
  BackgroundJobs& operator=(const BackgroundJobs&) = delete;
  ~BackgroundJobs();  // cancels every job and waits for them

  // Registers job `id`, runs `prepare` (the job already counts as running: whoever sees what it
  // prepared sees it running), then runs `work` in a thread. An error from `prepare` is returned
  // and nothing runs.
  Error start(const std::string& id, const std::function<Error()>& prepare, Work work);
  // Whether job `id` was started and has not ended.
  bool running(const std::string& id);
  // Cancels job `id` and waits until it ended; false when no such job runs.
  bool cancel(const std::string& id);
  // Cancels every job and waits until all ended.
  void cancel_all();

 private:
  struct Job {
    std::atomic<bool> cancelled{false};
    bool ended = false;
    std::thread thread;
  };
  // Joins and forgets the jobs that ended (mutex_ held).
  void reap();

  std::mutex mutex_;
  std::condition_variable ended_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;
};

}  // namespace allm
