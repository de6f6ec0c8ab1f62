// The scheduler on a scripted backend: prompts read in chunks beside running streams, prefix
// reuse with trim_sequence and copy_prefix, the bounded queue and the per-request deadline.
#include "text/scheduler.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <tuple>

namespace allm {
namespace {

constexpr int kVocab = 8;

// Greedy output is a function of the last input token, so runs are reproducible; token 0 (end
// of generation) is never picked.
class FakeBackend : public TextBackend {
 public:
  struct Log {
    std::mutex mutex;
    std::vector<std::vector<BatchToken>> batches;
    std::vector<std::pair<int, int>> trims;         // (sequence, from_position)
    std::vector<std::tuple<int, int, int>> copies;  // (from, to, length)
    std::thread::id embedding_thread;
    std::vector<std::thread::id> decode_threads;
  };
  FakeBackend(std::shared_ptr<Log> log, int max_batch, int sequences, int ctx)
      : log_(std::move(log)), max_batch_(max_batch), sequences_(sequences), ctx_(ctx) {}

  std::vector<Token> tokenize(const std::string& text, bool) const override {
    return std::vector<Token>(text.begin(), text.end());
  }
  std::string token_bytes(Token token) const override { return std::string(1, 'a' + token); }
  bool is_end_of_generation(Token token) const override { return token == 0; }
  int vocab_size() const override { return kVocab; }
  int context_per_sequence() const override { return ctx_; }
  int max_sequences() const override { return sequences_; }
  int max_batch() const override { return max_batch_; }
  bool adds_bos() const override { return false; }
  std::string chat_template() const override { return ""; }
  std::string bos_text() const override { return ""; }
  std::string eos_text() const override { return ""; }

  Error decode(const std::vector<BatchToken>& batch) override {
    {
      std::lock_guard<std::mutex> lock(log_->mutex);
      log_->batches.push_back(batch);
      log_->decode_threads.push_back(std::this_thread::get_id());
    }
    logits_.assign(batch.size() * kVocab, 0.0f);
    for (size_t i = 0; i < batch.size(); ++i) {
      logits_[i * kVocab + 1 + (batch[i].token + 3) % (kVocab - 1)] = 10.0f;
    }
    return {};
  }
  const float* logits(int i) override { return logits_.data() + i * kVocab; }
  void clear_sequence(int) override {}
  void trim_sequence(int sequence, int from) override {
    std::lock_guard<std::mutex> lock(log_->mutex);
    log_->trims.emplace_back(sequence, from);
  }
  bool copy_prefix(int from, int to, int length) override {
    std::lock_guard<std::mutex> lock(log_->mutex);
    log_->copies.emplace_back(from, to, length);
    return true;
  }
  size_t memory_bytes() const override { return 0; }
  Error embed(const std::vector<std::vector<Token>>& inputs,
              std::vector<std::vector<float>>* vectors) override {
    std::lock_guard<std::mutex> lock(log_->mutex);
    log_->embedding_thread = std::this_thread::get_id();
    vectors->assign(inputs.size(), {1.0f});
    return {};
  }

 private:
  std::shared_ptr<Log> log_;
  int max_batch_, sequences_, ctx_;
  std::vector<float> logits_;
};

struct Outcome {
  std::string text;
  FinishReason reason = FinishReason::STOP;
  Error error;
  int completion = 0;
  int cached = 0;
};

// A greedy job whose outcome arrives through the returned future.
std::shared_ptr<GenerationJob> make_job(std::vector<Token> prompt, int max_tokens,
                                        std::future<Outcome>* done) {
  auto job = std::make_shared<GenerationJob>();
  job->prompt = std::move(prompt);
  job->max_tokens = max_tokens;
  job->sampling.temperature = 0;
  auto text = std::make_shared<std::string>();
  auto promise = std::make_shared<std::promise<Outcome>>();
  *done = promise->get_future();
  job->sink.on_text = [text](const std::string& t, std::vector<TokenLogprob>&&) { *text += t; };
  job->sink.on_finish = [text, promise](FinishReason reason, const Error& error, int completion,
                                        int cached) {
    promise->set_value({*text, reason, error, completion, cached});
  };
  return job;
}

std::vector<Token> tokens(int n, int seed) {
  std::vector<Token> out;
  for (int i = 0; i < n; ++i) out.push_back(1 + (i * 7 + seed) % (kVocab - 1));
  return out;
}

// Embeddings run on a thread that ends with them, not on the caller's (an HTTP worker that
// lives on, where an OpenMP team would stay behind: compute_thread.h).
TEST(Scheduler, EmbeddingsRunOnAThreadOfTheirOwn) {
  auto log = std::make_shared<FakeBackend::Log>();
  Scheduler scheduler(std::make_unique<FakeBackend>(log, 16, 2, 64), 8);
  std::vector<std::vector<float>> vectors;
  ASSERT_FALSE(scheduler.embed({{1, 2}, {3}}, &vectors));
  EXPECT_EQ(vectors.size(), 2u);
  EXPECT_NE(log->embedding_thread, std::this_thread::get_id());
  EXPECT_NE(log->embedding_thread, std::thread::id());
}

// Every model's decode steps run on one shared thread, so that OpenMP keeps a single team for
// them all (compute_thread.h): two models' schedulers decode on the same thread.
TEST(Scheduler, ModelsDecodeOnOneSharedThread) {
  auto first_log = std::make_shared<FakeBackend::Log>();
  auto second_log = std::make_shared<FakeBackend::Log>();
  Scheduler first(std::make_unique<FakeBackend>(first_log, 16, 2, 64), 8);
  Scheduler second(std::make_unique<FakeBackend>(second_log, 16, 2, 64), 8);
  std::future<Outcome> first_done, second_done;
  first.submit(make_job(tokens(5, 1), 3, &first_done));
  second.submit(make_job(tokens(5, 2), 3, &second_done));
  ASSERT_EQ(first_done.get().reason, FinishReason::LENGTH);
  ASSERT_EQ(second_done.get().reason, FinishReason::LENGTH);

  std::vector<std::thread::id> threads = first_log->decode_threads;
  threads.insert(threads.end(), second_log->decode_threads.begin(),
                 second_log->decode_threads.end());
  ASSERT_GE(threads.size(), 6u);
  for (std::thread::id thread : threads) EXPECT_EQ(thread, threads.front());
  EXPECT_NE(threads.front(), std::this_thread::get_id());
}

TEST(Scheduler, LongPromptIsReadInChunksWithoutStallingARunningStream) {
  auto log = std::make_shared<FakeBackend::Log>();
  Scheduler scheduler(std::make_unique<FakeBackend>(log, 16, 2, 1 << 20), 8);
  std::future<Outcome> stream_done, long_done;
  auto stream = make_job(tokens(4, 1), 0, &stream_done);  // generates until cancelled
  scheduler.submit(stream);
  while (true) {  // the stream is generating before the long prompt arrives
    std::lock_guard<std::mutex> lock(log->mutex);
    if (log->batches.size() >= 3) break;
  }
  scheduler.submit(make_job(tokens(400, 2), 5, &long_done));
  ASSERT_EQ(long_done.get().reason, FinishReason::LENGTH);
  stream->cancelled->store(true);
  ASSERT_EQ(stream_done.get().reason, FinishReason::CANCELLED);

  std::lock_guard<std::mutex> lock(log->mutex);
  int prompt_steps = 0, prompt_tokens = 0;
  for (const auto& batch : log->batches) {
    EXPECT_LE(batch.size(), 16u);
    int long_tokens = 0, stream_tokens = 0;
    for (const BatchToken& t : batch) (t.sequence == 1 ? long_tokens : stream_tokens)++;
    if (long_tokens == 0 || prompt_tokens >= 400) continue;
    prompt_tokens += long_tokens;
    ++prompt_steps;
    EXPECT_EQ(stream_tokens, 1) << "the running stream must get a token in every step";
  }
  EXPECT_GE(prompt_steps, 400 / 15) << "the long prompt must be read over many steps";
}

// Requests sent together reach an idle scheduler a little apart; their prompts go into one batch.
TEST(Scheduler, ABurstOfRequestsSharesTheFirstBatch) {
  auto log = std::make_shared<FakeBackend::Log>();
  Scheduler scheduler(std::make_unique<FakeBackend>(log, 256, 4, 4096), 8);
  std::future<Outcome> done[4];
  for (int i = 0; i < 4; ++i) scheduler.submit(make_job(tokens(10, i), 2, &done[i]));
  for (auto& d : done) ASSERT_EQ(d.get().reason, FinishReason::LENGTH);
  std::lock_guard<std::mutex> lock(log->mutex);
  ASSERT_FALSE(log->batches.empty());
  EXPECT_EQ(log->batches.front().size(), 40u) << "all four prompts in the first batch";
}

// A job with no real match takes the least recently used free slot, leaving the slot whose
// cache holds a whole prompt to the job admitted with it that repeats that prompt.
TEST(Scheduler, AJobWithoutAMatchLeavesAWholeCachedPromptToTheJobThatRepeatsIt) {
  auto log = std::make_shared<FakeBackend::Log>();
  Scheduler scheduler(std::make_unique<FakeBackend>(log, 256, 2, 4096), 8);
  const std::vector<Token> repeated = tokens(20, 1), other = tokens(20, 2), fresh = tokens(20, 4);
  std::future<Outcome> a, b, c, d;
  scheduler.submit(make_job(repeated, 2, &a));
  ASSERT_EQ(a.get().cached, 0);
  scheduler.submit(make_job(other, 2, &b));  // takes the unused slot: its match is no match
  ASSERT_EQ(b.get().cached, 0);
  scheduler.submit(make_job(fresh, 2, &c));  // first in line, matches nothing
  scheduler.submit(make_job(repeated, 2, &d));
  EXPECT_EQ(d.get().cached, 19) << "the repeated prompt must find its cache intact";
  EXPECT_EQ(c.get().reason, FinishReason::LENGTH);
}

TEST(Scheduler, SharedPrefixIsReusedAndOnlyTheTailIsTrimmed) {
  auto log = std::make_shared<FakeBackend::Log>();
  Scheduler scheduler(std::make_unique<FakeBackend>(log, 64, 2, 4096), 8);
  std::vector<Token> system = tokens(100, 3);
  std::vector<Token> first = system, second = system;
  first.push_back(2);
  second.push_back(5);
  std::future<Outcome> a, b, c;
  scheduler.submit(make_job(first, 10, &a));
  const Outcome alone = a.get();
  EXPECT_EQ(alone.cached, 0);
  scheduler.submit(make_job(second, 10, &b));
  const Outcome reused = b.get();
  EXPECT_EQ(reused.cached, 100) << "the 100 shared tokens are not decoded again";
  scheduler.submit(make_job(first, 10, &c));
  const Outcome again = c.get();
  EXPECT_EQ(again.cached, 100);
  EXPECT_EQ(again.text, alone.text) << "reusing the cache must not change the output";
  std::lock_guard<std::mutex> lock(log->mutex);
  ASSERT_EQ(log->trims.size(), 3u);
  EXPECT_EQ(log->trims[1], std::make_pair(0, 100));
  // The second request decoded only its own token, at position 100.
  size_t decoded_for_second = 0;
  for (const auto& batch : log->batches) {
    for (const BatchToken& t : batch) {
      if (t.position == 100 && t.token == 5) ++decoded_for_second;
    }
  }
  EXPECT_EQ(decoded_for_second, 1u);
}

// A system prompt that a running conversation holds is copied into the new job's slot, not
// decoded again; a short common prefix is not worth a copy.
TEST(Scheduler, APrefixHeldByARunningSequenceIsCopiedIntoTheNewSlot) {
  auto log = std::make_shared<FakeBackend::Log>();
  // A context the endless stream cannot fill before it is cancelled: with 4096 the instant fake
  // decoder sometimes reached it first on a busy machine, ending the stream with LENGTH.
  Scheduler scheduler(std::make_unique<FakeBackend>(log, 256, 3, 1 << 20), 8);
  std::vector<Token> system = tokens(40, 3), running = system, joining = system;
  running.push_back(2);
  joining.insert(joining.end(), {5, 6, 5});
  std::future<Outcome> a, b, c;
  auto stream = make_job(running, 0, &a);  // generates until cancelled
  scheduler.submit(stream);
  while (true) {
    std::lock_guard<std::mutex> lock(log->mutex);
    if (log->batches.size() >= 2) break;
  }
  scheduler.submit(make_job(joining, 4, &b));
  EXPECT_EQ(b.get().cached, 40) << "the 40 system prompt tokens come from the running sequence";
  std::vector<Token> short_match = tokens(10, 3);
  short_match.insert(short_match.end(), 30, 6);  // less than half shared: a fresh slot
  scheduler.submit(make_job(short_match, 2, &c));
  EXPECT_EQ(c.get().cached, 0) << "10 shared tokens are decoded, not copied";
  stream->cancelled->store(true);
  ASSERT_EQ(a.get().reason, FinishReason::CANCELLED);

  std::lock_guard<std::mutex> lock(log->mutex);
  ASSERT_EQ(log->copies.size(), 1u);
  EXPECT_EQ(log->copies[0], std::make_tuple(0, 1, 40));
  // The joining job decoded only its own three tokens, from position 40 on.
  int joined_positions = 0;
  for (const auto& batch : log->batches) {
    for (const BatchToken& t : batch) {
      if (t.sequence == 1 && t.position < 43) {
        EXPECT_GE(t.position, 40);
        ++joined_positions;
      }
    }
  }
  EXPECT_EQ(joined_positions, 3);
}

TEST(Scheduler, PicksTheFreeSlotWithTheLongestCommonPrefix) {
  auto log = std::make_shared<FakeBackend::Log>();
  Scheduler scheduler(std::make_unique<FakeBackend>(log, 64, 2, 4096), 8);
  std::future<Outcome> a, b, c;
  std::vector<Token> p1 = tokens(50, 1), p2 = tokens(50, 4);
  scheduler.submit(make_job(p1, 3, &a));
  scheduler.submit(make_job(p2, 3, &b));
  a.get();
  b.get();
  std::vector<Token> p2_more = p2;
  p2_more.push_back(6);
  scheduler.submit(make_job(p2_more, 3, &c));
  EXPECT_EQ(c.get().cached, 50);
}

TEST(Scheduler, FullQueueRefusesNewJobs) {
  auto log = std::make_shared<FakeBackend::Log>();
  Scheduler scheduler(std::make_unique<FakeBackend>(log, 64, 1, 1 << 20), 1);
  std::future<Outcome> running, queued, refused;
  auto long_job = make_job(tokens(4, 1), 0, &running);  // runs until cancelled
  ASSERT_TRUE(scheduler.submit(long_job));
  ASSERT_TRUE(scheduler.submit(make_job(tokens(4, 2), 2, &queued)));
  EXPECT_FALSE(scheduler.submit(make_job(tokens(4, 3), 2, &refused)));
  long_job->cancelled->store(true);
  EXPECT_EQ(running.get().reason, FinishReason::CANCELLED);
  EXPECT_EQ(queued.get().reason, FinishReason::LENGTH);
}

TEST(Scheduler, DeadlineEndsRunningAndWaitingJobsWithTimeout) {
  auto log = std::make_shared<FakeBackend::Log>();
  Scheduler scheduler(std::make_unique<FakeBackend>(log, 64, 1, 1 << 20), 4);
  std::future<Outcome> running, waiting;
  auto first = make_job(tokens(4, 1), 0, &running);
  first->deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(100);
  auto second = make_job(tokens(4, 2), 0, &waiting);
  second->deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
  scheduler.submit(first);
  scheduler.submit(second);
  const Outcome w = waiting.get();
  EXPECT_EQ(w.reason, FinishReason::ERROR);
  EXPECT_EQ(w.error.code, ErrorCode::TIMEOUT);
  EXPECT_EQ(w.completion, 0);
  const Outcome r = running.get();
  EXPECT_EQ(r.reason, FinishReason::ERROR);
  EXPECT_EQ(r.error.code, ErrorCode::TIMEOUT);
  EXPECT_GT(r.completion, 0);
}

TEST(Scheduler, CancelAllEndsEverything) {
  auto log = std::make_shared<FakeBackend::Log>();
  Scheduler scheduler(std::make_unique<FakeBackend>(log, 64, 1, 1 << 20), 4);
  std::future<Outcome> running, waiting;
  scheduler.submit(make_job(tokens(4, 1), 0, &running));
  scheduler.submit(make_job(tokens(4, 2), 0, &waiting));
  scheduler.cancel_all();
  EXPECT_EQ(running.get().reason, FinishReason::CANCELLED);
  EXPECT_EQ(waiting.get().reason, FinishReason::CANCELLED);
}

// The fake backend's tokens write 'a' (token 0, the end of generation) to 'h'; greedy decoding
// follows the last token, so left alone it never writes "cdc".
TEST(Scheduler, AGrammarForcesTheOutputAndEndsItWhenComplete) {
  auto log = std::make_shared<FakeBackend::Log>();
  Scheduler scheduler(std::make_unique<FakeBackend>(log, 64, 2, 1 << 20), 4);
  std::future<Outcome> constrained, free;
  auto job = make_job(tokens(4, 1), 20, &constrained);
  job->grammar.gbnf = R"(root ::= "c" "d" [b-c])";
  scheduler.submit(job);
  scheduler.submit(make_job(tokens(4, 1), 3, &free));
  const Outcome c = constrained.get();
  EXPECT_EQ(c.reason, FinishReason::STOP);
  EXPECT_EQ(c.text.substr(0, 2), "cd");
  EXPECT_EQ(c.text.size(), 3u);
  EXPECT_EQ(c.completion, 3);
  EXPECT_NE(free.get().text.substr(0, 2), "cd");
}

TEST(Scheduler, AGrammarThatDoesNotParseFailsTheJob) {
  auto log = std::make_shared<FakeBackend::Log>();
  Scheduler scheduler(std::make_unique<FakeBackend>(log, 64, 1, 1 << 20), 4);
  std::future<Outcome> done, next;
  auto job = make_job(tokens(4, 1), 5, &done);
  job->grammar.gbnf = "root ::= (";
  scheduler.submit(job);
  const Outcome o = done.get();
  EXPECT_EQ(o.reason, FinishReason::ERROR);
  EXPECT_EQ(o.error.code, ErrorCode::INTERNAL);
  scheduler.submit(make_job(tokens(4, 2), 2, &next));  // the slot serves the next job
  EXPECT_EQ(next.get().reason, FinishReason::LENGTH);
}

}  // namespace
}  // namespace allm
