// SIGINT and SIGTERM taken as ordinary code: blocked in every thread (before any is started) and
// waited for with sigtimedwait, instead of handled in a signal handler.
#pragma once

#include <signal.h>

#include <chrono>
#include <functional>

namespace allm {

// Blocks SIGINT and SIGTERM in the calling thread and in the threads it starts afterwards.
sigset_t block_shutdown_signals();

// Waits for one of `set` while `keep_waiting()` holds; the signal number, or 0 when
// `keep_waiting()` turned false first or the time ran out.
int wait_for_signal(const sigset_t& set, const std::function<bool()>& keep_waiting,
                    std::chrono::steady_clock::time_point until);

}  // namespace allm
