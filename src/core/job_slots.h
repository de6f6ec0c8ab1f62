// JobSlots: bounded admission for long jobs (transcriptions, image generations). At most
// `parallel` run at once; up to `queue` more wait behind them, first come first served; beyond
// that a request is refused with 429. A waiting request gives up at its deadline (TIMEOUT) or
// when its client is gone (CANCELLED).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>

#include "base/error.h"

namespace allm {

// The words in JobSlots' error messages.
struct JobSlotsWords {
  std::string jobs;   // "transcriptions": "too many transcriptions in progress (...)"
  std::string flags;  // the options that size it: "--audio-parallel, --audio-queue"
  std::string limit;  // the time limit and its option: "600 s, --audio-timeout"
};

class JobSlots {
 public:
  using Clock = std::chrono::steady_clock;

  JobSlots(int parallel, int queue, JobSlotsWords words);

  // Takes a running slot, waiting for one if need be; on success the caller must release().
  // `client_gone` is polled while waiting; it may be empty.
  Error acquire(Clock::time_point deadline, const std::function<bool()>& client_gone);
  void release();

  // For metrics.
  int running();
  int waiting();

 private:
  const int parallel_;
  const int queue_;
  const JobSlotsWords words_;

  std::mutex mutex_;
  std::condition_variable freed_;
  int running_ = 0;
  std::deque<uint64_t> waiting_;  // tickets, first come first served
  uint64_t next_ticket_ = 0;
};

// Holds an acquired slot and releases it when it goes out of scope.
class JobSlotHold {
 public:
  explicit JobSlotHold(JobSlots& slots) : slots_(slots) {}
  ~JobSlotHold() { slots_.release(); }
  JobSlotHold(const JobSlotHold&) = delete;
  JobSlotHold& operator=(const JobSlotHold&) = delete;

 private:
  JobSlots& slots_;
};

// Whether an admitted job should stop, asked from inside the engine's compute loop: past its
// deadline, its client gone, or the server cancelling every job. The deadline is cheap to check;
// the client's socket is looked at only every 100 ms.
class JobStopCheck {
 public:
  using Clock = std::chrono::steady_clock;

  JobStopCheck(Clock::time_point deadline, const std::function<bool()>& client_gone,
               const std::atomic<bool>& cancelling)
      : deadline_(deadline), client_gone_(client_gone), cancelling_(cancelling) {}

  bool operator()();
  bool timed_out() const { return timed_out_; }

 private:
  const Clock::time_point deadline_;
  const std::function<bool()>& client_gone_;  // may be empty
  const std::atomic<bool>& cancelling_;
  Clock::time_point last_poll_ = Clock::now();
  bool timed_out_ = false, cancelled_ = false;
};

}  // namespace allm
