// Load-time work split over threads, the caller's among them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <thread>
#include <vector>

namespace stcpp {

// Calls work(first, step) on min(threads, n) threads (at least one), first = 0, 1, ... and
// step = the thread count: each takes items first, first + step, ... of n items.
template <typename Work>
void for_each_strided(int64_t n, int threads, Work work) {
  const int64_t count = std::max<int64_t>(1, std::min<int64_t>(threads, n));
  std::vector<std::thread> workers;
  for (int64_t t = 1; t < count; ++t) workers.emplace_back(work, t, count);
  work(int64_t{0}, count);
  for (std::thread& worker : workers) worker.join();
}

}  // namespace stcpp
