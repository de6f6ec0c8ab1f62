#include "core/job_slots.h"

#include <algorithm>
#include <utility>

namespace allm {

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(100);

}  // namespace

JobSlots::JobSlots(int parallel, int queue, JobSlotsWords words)
    : parallel_(parallel), queue_(queue), words_(std::move(words)) {}

Error JobSlots::acquire(Clock::time_point deadline, const std::function<bool()>& client_gone) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (running_ < parallel_ && waiting_.empty()) {
    ++running_;
    return {};
  }
  if (static_cast<int>(waiting_.size()) >= queue_) {
    return request_error("too many " + words_.jobs + " in progress (" + std::to_string(parallel_) +
                             " running, " + std::to_string(queue_) + " waiting: " + words_.flags +
                             "); retry shortly",
                         "", "rate_limit_exceeded");
  }
  const uint64_t ticket = next_ticket_++;
  waiting_.push_back(ticket);
  for (;;) {
    const bool admitted = freed_.wait_for(
        lock, kPollInterval, [&] { return waiting_.front() == ticket && running_ < parallel_; });
    if (admitted) {
      waiting_.pop_front();
      ++running_;
      freed_.notify_all();  // the next in line may fit too
      return {};
    }
    Error stop;
    if (Clock::now() >= deadline) {
      stop = make_error(ErrorCode::TIMEOUT, "the request waited longer than the time limit (" +
                                                words_.limit + ") for a free slot");
    } else if (client_gone && client_gone()) {
      stop = make_error(ErrorCode::CANCELLED, "the client disconnected while waiting");
    }
    if (stop) {
      waiting_.erase(std::find(waiting_.begin(), waiting_.end(), ticket));
      freed_.notify_all();
      return stop;
    }
  }
}

void JobSlots::release() {
  std::lock_guard<std::mutex> lock(mutex_);
  --running_;
  freed_.notify_all();
}

int JobSlots::running() {
  std::lock_guard<std::mutex> lock(mutex_);
  return running_;
}

int JobSlots::waiting() {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int>(waiting_.size());
}

bool JobStopCheck::operator()() {
  const auto now = Clock::now();
  if (now >= deadline_) timed_out_ = true;
  if (!timed_out_ && client_gone_ && now - last_poll_ >= kPollInterval) {
    last_poll_ = now;
    cancelled_ = client_gone_();
  }
  if (cancelling_) cancelled_ = true;
  return timed_out_ || cancelled_;
}

}  // namespace allm
