// Background jobs: each runs in its own thread under an id, can be cancelled by it, and all are
// cancelled and waited for when the registry goes.
#include "core/background_jobs.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

namespace allm {
namespace {

// Work that runs until it is cancelled, counting how it ended.
BackgroundJobs::Work until_cancelled(std::atomic<int>* ended) {
  return [ended](const std::atomic<bool>& cancelled) {
    while (!cancelled) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ++*ended;
  };
}

TEST(BackgroundJobs, ACancelledJobHasEndedWhenCancelReturns) {
  std::atomic<int> ended{0};
  BackgroundJobs jobs;
  ASSERT_FALSE(jobs.start(
      "a", [] { return Error{}; }, until_cancelled(&ended)));
  EXPECT_TRUE(jobs.running("a"));
  EXPECT_FALSE(jobs.running("b"));
  EXPECT_TRUE(jobs.cancel("a"));
  EXPECT_EQ(ended, 1);
  EXPECT_FALSE(jobs.running("a"));
  EXPECT_FALSE(jobs.cancel("a")) << "an ended job is not cancelled again";
}

TEST(BackgroundJobs, AJobRunsWhileItPreparesAndNotWhenPreparingFails) {
  BackgroundJobs jobs;
  bool seen_running = false;
  bool ran = false;
  ASSERT_FALSE(jobs.start(
      "a",
      [&] {
        seen_running = jobs.running("a");
        return Error{};
      },
      [&](const std::atomic<bool>&) { ran = true; }));
  EXPECT_TRUE(seen_running);
  const Error refused = jobs.start(
      "b", [] { return make_error(ErrorCode::INTERNAL, "no store"); },
      [&](const std::atomic<bool>&) { FAIL() << "the work of a job that failed to prepare ran"; });
  EXPECT_EQ(refused.message, "no store");
  EXPECT_FALSE(jobs.running("b"));
  jobs.cancel_all();
  EXPECT_TRUE(ran);
}

TEST(BackgroundJobs, AJobThatEndsByItselfStopsRunning) {
  BackgroundJobs jobs;
  ASSERT_FALSE(jobs.start(
      "a", [] { return Error{}; }, [](const std::atomic<bool>&) {}));
  for (int i = 0; i < 1000 && jobs.running("a"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_FALSE(jobs.running("a"));
  // Its id can be used again once it ended.
  EXPECT_FALSE(jobs.start(
      "a", [] { return Error{}; }, [](const std::atomic<bool>&) {}));
}

TEST(BackgroundJobs, TheRegistryCancelsAndWaitsForEveryJobWhenItGoes) {
  std::atomic<int> ended{0};
  {
    BackgroundJobs jobs;
    for (const char* id : {"a", "b", "c"}) {
      ASSERT_FALSE(jobs.start(
          id, [] { return Error{}; }, until_cancelled(&ended)));
    }
  }
  EXPECT_EQ(ended, 3);
}

}  // namespace
}  // namespace allm
