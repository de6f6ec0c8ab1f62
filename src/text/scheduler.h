// Continuous batching over one backend: every step decodes one token for each generating
// sequence plus a chunk of any prompt still being read, so requests run together. Each slot
// keeps its sequence's cache after a request ends, so a later prompt with the same prefix (a
// shared system prompt, the next turn of a conversation) only decodes what differs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/compute_thread.h"
#include "text/backend.h"
#include "text/generation.h"

namespace allm {

struct TokenTable;

class Scheduler {
 public:
  // `queue_limit`: jobs that may wait for a free sequence; submit() refuses beyond that.
  Scheduler(std::unique_ptr<TextBackend> backend, int queue_limit);
  ~Scheduler();

  const TextBackend& backend() const { return *backend_; }
  // Embeddings run on the backend's own embedding context, beside the decode loop (which goes
  // on meanwhile), on a compute thread of their own (not the caller's: see compute_thread.h).
  Error embed(const std::vector<std::vector<Token>>& inputs,
              std::vector<std::vector<float>>* vectors) {
    Error error;
    run_on_compute_thread([&] { error = backend_->embed(inputs, vectors); });
    return error;
  }
  // False (the job is not taken) when all sequences are busy and the queue is full.
  bool submit(std::shared_ptr<GenerationJob> job);
  int active_sequences() const;
  int waiting_jobs() const;
  // Ends every running and waiting job with CANCELLED (shutdown past its grace period).
  void cancel_all();

 private:
  struct Slot;

  void run();
  void expire_waiting_jobs();
  void admit_waiting_jobs();
  Slot* longest_prefix(const std::vector<Token>& prompt, size_t* shared,
                       const std::function<bool(const Slot&)>& eligible);
  Slot* least_recently_used_free_slot();
  void place(Slot& slot, std::shared_ptr<GenerationJob> job, size_t shared);  // mutex_ held
  void drop_cancelled_and_expired();
  // What a batch entry's logits are for: the slot's next token, or the log probability of its
  // prompt token `prompt_index` (GenerationJob::prompt_logprobs).
  struct LogitsUse {
    Slot* slot;
    int prompt_index = -1;  // -1: sampling
  };
  std::vector<BatchToken> build_batch(std::vector<LogitsUse>* uses);
  void score_prompt_token(Slot& slot, int batch_index, int prompt_index);
  void emit_prompt_logprobs(Slot& slot);
  void sample_and_emit(Slot& slot, int batch_index);
  void finish(Slot& slot, FinishReason reason, const Error& error = {});

  std::unique_ptr<TextBackend> backend_;
  std::shared_ptr<const TokenTable> tokens_;  // read when a job first brings a grammar
  const int queue_limit_;
  std::vector<std::unique_ptr<Slot>> slots_;
  uint64_t admissions_ = 0;  // jobs given a slot so far (orders the slots' last use)
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<GenerationJob>> waiting_;
  int active_ = 0;
  bool stopping_ = false;
  std::atomic<bool> cancel_all_{false};
  std::thread thread_;
};

}  // namespace allm
