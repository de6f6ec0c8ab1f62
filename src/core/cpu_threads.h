// How many CPU threads each engine uses when --threads is not given: what the machine (and the
// process's CPU affinity and cgroup quota) allows, by llama.cpp's rule of one thread per
// physical core for compute.
#pragma once

#include <string>
#include <vector>

namespace allm {

struct CpuCount {
  int logical = 1;   // CPUs this process may run on
  int physical = 1;  // distinct cores among them (SMT siblings counted once), within the quota
};

// The CPUs this process may run on (its affinity mask), counted from /sys/devices/system/cpu
// and capped at the cgroup v2 quota in /sys/fs/cgroup/cpu.max when one is set.
CpuCount count_cpus();
// The same for the CPUs `allowed`: each one's topology/thread_siblings_list under
// `sysfs_cpu_dir` names its core; `cgroup_dir`/cpu.max ("QUOTA PERIOD" or "max PERIOD") caps.
CpuCount count_cpus(const std::vector<int>& allowed, const std::string& sysfs_cpu_dir,
                    const std::string& cgroup_dir);

struct ThreadPlan {
  int text = 1;           // decode and prompt batches of every text model
  int audio_per_job = 1;  // each of the --audio-parallel transcriptions
  int image_per_job = 1;  // each of the --image-parallel image generations
  std::string describe() const;
};

// `requested` (--threads) > 0 is used for every engine as given. Otherwise text takes every
// physical core (as llama.cpp's default: more threads than cores only makes them wait on each
// other, and prompt batches measured no faster with SMT siblings added), and audio and image
// jobs share the physical cores between their parallel slots. Text, audio and image jobs that
// run at the same time share the cores through the OS scheduler.
ThreadPlan plan_threads(const CpuCount& cpus, int requested, int audio_parallel,
                        int image_parallel);

// The threads each of a manager's `parallel` jobs computes with: `configured` (what `allm serve`
// set from plan_threads) when > 0, else plan_threads' rule on this machine's cores (text: one job
// at a time, its sequences batched together).
int threads_per_job(int configured, int parallel);

}  // namespace allm
