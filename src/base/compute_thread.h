// Runs a ggml computation on a thread of its own and waits for it.
//
// ggml's CPU backend is built on OpenMP. libgomp keeps a team of worker threads for every thread
// that has started a parallel region, for as long as that thread lives, and once all the teams
// together outnumber the CPUs its barriers stop spinning and sleep instead (measured: a whisper
// transcription 1.5-2x slower on 2 cores). Jobs that ran on the HTTP server's long-lived worker
// threads would each leave a team behind; on a thread that ends with the job, the team goes too.
#pragma once

#include <thread>
#include <utility>

namespace allm {

template <class Work>
void run_on_compute_thread(Work&& work) {
  std::thread(std::forward<Work>(work)).join();
}

}  // namespace allm
