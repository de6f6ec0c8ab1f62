// Continuous batching over one backend: every step decodes one token for each generating
// sequence plus a chunk of any prompt still being read, so requests run together.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "text/backend.h"
#include "text/generation.h"

namespace allm {

class Scheduler {
 public:
  explicit Scheduler(std::unique_ptr<TextBackend> backend);
  ~Scheduler();

  const TextBackend& backend() const { return *backend_; }
  void submit(std::shared_ptr<GenerationJob> job);
  int active_sequences() const;

 private:
  struct Slot;

  void run();
  void admit_waiting_jobs();
  void drop_cancelled();
  std::vector<BatchToken> build_batch(std::vector<Slot*>* wants_sample);
  void sample_and_emit(Slot& slot, int batch_index);
  void finish(Slot& slot, FinishReason reason, const Error& error = {});

  std::unique_ptr<TextBackend> backend_;
  std::vector<std::unique_ptr<Slot>> slots_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<GenerationJob>> waiting_;
  int active_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace allm
