// Where ggml computations run, so that OpenMP keeps as few thread teams as possible.
//
// ggml's CPU backend is built on OpenMP. libgomp keeps a team of worker threads for every thread
// that has started a parallel region, for as long as that thread lives, and once all the teams
// together outnumber the CPUs its barriers stop spinning and sleep instead (measured: a whisper
// transcription 1.5-2x slower on 2 cores; a second text model that decoded once cost the first
// 10% of its decode speed and 80x the context switches).
#pragma once

#include <functional>
#include <thread>
#include <utility>

namespace allm {

// Runs a one-off job (a load, an embedding, a transcription, an image) on a thread of its own
// and waits for it. Jobs that ran on the HTTP server's long-lived worker threads would each
// leave a team behind; on a thread that ends with the job, the team goes too.
template <class Work>
void run_on_compute_thread(Work&& work) {
  std::thread(std::forward<Work>(work)).join();
}

// Runs one decode step on the process's one long-lived decode thread and waits for it. Every
// text model's scheduler loops for as long as the model is loaded; their steps all run here, in
// the order they arrive, so that all of them share a single team (and take turns on the cores
// rather than contend for them).
void run_on_decode_thread(const std::function<void()>& work);

}  // namespace allm
