#include "core/background_jobs.h"

namespace allm {

BackgroundJobs::~BackgroundJobs() {
  cancel_all();
}

Error BackgroundJobs::start(const std::string& id, const std::function<Error()>& prepare,
                            Work work) {
  auto job = std::make_shared<Job>();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    reap();
    if (jobs_.count(id)) return make_error(ErrorCode::INTERNAL, "background job " + id + " exists");
    jobs_[id] = job;
  }
  if (Error e = prepare()) {
    std::lock_guard<std::mutex> lock(mutex_);
    job->ended = true;  // a cancel() that found it waits for this
    jobs_.erase(id);
    ended_.notify_all();
    return e;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  job->thread = std::thread([this, job, work = std::move(work)]() mutable {
    work(job->cancelled);
    work = nullptr;  // what the work holds goes before the job counts as ended
    std::lock_guard<std::mutex> done(mutex_);
    job->ended = true;
    ended_.notify_all();
  });
  return {};
}

bool BackgroundJobs::running(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = jobs_.find(id);
  return it != jobs_.end() && !it->second->ended;
}

bool BackgroundJobs::cancel(const std::string& id) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = jobs_.find(id);
  if (it == jobs_.end() || it->second->ended) return false;
  std::shared_ptr<Job> job = it->second;
  job->cancelled = true;
  ended_.wait(lock, [&] { return job->ended; });
  return true;
}

void BackgroundJobs::cancel_all() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (auto& [id, job] : jobs_) job->cancelled = true;
  ended_.wait(lock, [this] {
    for (const auto& [id, job] : jobs_) {
      if (!job->ended) return false;
    }
    return true;
  });
  reap();
}

void BackgroundJobs::reap() {
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    if (!it->second->ended) {
      ++it;
      continue;
    }
    if (it->second->thread.joinable()) it->second->thread.join();
    it = jobs_.erase(it);
  }
}

}  // namespace allm
