// The HTTP connection threads (api/connection_pool.h): a burst of connections each gets a
// thread at once, up to the limit; the accept time reaches the serving thread.
#include "api/connection_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

namespace allm {
namespace {

using namespace std::chrono_literals;

// Jobs that block until `open()`; counts how many run at once.
struct Gate {
  std::mutex mutex;
  std::condition_variable changed;
  int running = 0;
  bool is_open = false;
  void enter() {
    std::unique_lock<std::mutex> lock(mutex);
    ++running;
    changed.notify_all();
    changed.wait(lock, [this] { return is_open; });
  }
  bool wait_running(int n) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, 5s, [&] { return running >= n; });
  }
  void open() {
    std::lock_guard<std::mutex> lock(mutex);
    is_open = true;
    changed.notify_all();
  }
};

// httplib's pool queued most of such a burst behind its few started threads.
TEST(ConnectionPool, EveryConnectionOfABurstGetsAThread) {
  Gate gate;
  ConnectionPool pool(100, [](ConnectionPool::Clock::time_point) {});
  for (int i = 0; i < 68; ++i) ASSERT_TRUE(pool.enqueue([&] { gate.enter(); }));
  EXPECT_TRUE(gate.wait_running(68)) << gate.running << " of 68 running";
  EXPECT_EQ(pool.threads(), 68u);
  gate.open();
  pool.shutdown();
}

TEST(ConnectionPool, BeyondTheLimitConnectionsWait) {
  Gate gate;
  std::atomic<int> served{0};
  ConnectionPool pool(3, [](ConnectionPool::Clock::time_point) {});
  for (int i = 0; i < 5; ++i)
    pool.enqueue([&] {
      gate.enter();
      ++served;
    });
  EXPECT_TRUE(gate.wait_running(3));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(gate.running, 3);
  EXPECT_EQ(pool.threads(), 3u);
  gate.open();
  pool.shutdown();  // serves the waiting two first
  EXPECT_EQ(served, 5);
  EXPECT_FALSE(pool.enqueue([] {}));
}

TEST(ConnectionPool, IdleThreadsBeyondTheKeptOnesEnd) {
  Gate gate;
  ConnectionPool pool(
      50, [](ConnectionPool::Clock::time_point) {}, 100ms);
  for (int i = 0; i < 20; ++i) pool.enqueue([&] { gate.enter(); });
  ASSERT_TRUE(gate.wait_running(20));
  gate.open();
  for (int i = 0; i < 50 && pool.threads() > 8; ++i) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(pool.threads(), 8u);
}

TEST(ConnectionPool, TheAcceptTimeReachesTheServingThread) {
  std::mutex mutex;
  std::vector<ConnectionPool::Clock::time_point> seen;
  ConnectionPool pool(1, [&](ConnectionPool::Clock::time_point t) {
    std::lock_guard<std::mutex> lock(mutex);
    seen.push_back(t);
  });
  const auto before = ConnectionPool::Clock::now();
  pool.enqueue([] { std::this_thread::sleep_for(100ms); });
  pool.enqueue([] {});  // queued behind the first for ~100 ms
  pool.shutdown();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_LT(seen[1] - before, 50ms);  // when it was queued, not when it ran
}

}  // namespace
}  // namespace allm
