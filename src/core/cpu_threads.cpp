#include "core/cpu_threads.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <thread>

namespace allm {

namespace {

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// cgroup v2 `cpu.max`: "QUOTA PERIOD" or "max PERIOD"; 0 when there is no quota.
int quota_cpus(const std::string& cgroup_dir) {
  std::ifstream in(cgroup_dir + "/cpu.max");
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max" || period <= 0) return 0;
  const double cpus = std::atof(quota.c_str()) / period;
  return cpus > 0 ? std::max(1, static_cast<int>(std::ceil(cpus))) : 0;
}

}  // namespace

CpuCount count_cpus() {
  cpu_set_t mask;
  CPU_ZERO(&mask);
  const bool have_mask = sched_getaffinity(0, sizeof(mask), &mask) == 0;
  std::vector<int> allowed;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!have_mask || CPU_ISSET(cpu, &mask)) allowed.push_back(cpu);
  }
  return count_cpus(allowed, "/sys/devices/system/cpu", "/sys/fs/cgroup");
}

CpuCount count_cpus(const std::vector<int>& allowed, const std::string& sysfs_cpu_dir,
                    const std::string& cgroup_dir) {
  std::set<std::string> cores;  // one thread_siblings_list per physical core
  int logical = 0;
  for (int cpu : allowed) {
    const std::string siblings =
        read_line(sysfs_cpu_dir + "/cpu" + std::to_string(cpu) + "/topology/thread_siblings_list");
    if (siblings.empty()) continue;
    ++logical;
    cores.insert(siblings);
  }
  CpuCount count;
  if (logical == 0) {  // no topology to read: every CPU is a core
    logical = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    count.physical = logical;
  } else {
    count.physical = static_cast<int>(cores.size());
  }
  count.logical = logical;
  if (const int quota = quota_cpus(cgroup_dir)) {
    count.logical = std::min(count.logical, quota);
    count.physical = std::min(count.physical, quota);
  }
  return count;
}

namespace {

// The physical cores shared between `parallel` jobs that run at once.
int cores_per_job(const CpuCount& cpus, int parallel) {
  return std::max(1, std::max(1, cpus.physical) / std::max(1, parallel));
}

}  // namespace

ThreadPlan plan_threads(const CpuCount& cpus, int requested, int audio_parallel,
                        int image_parallel) {
  ThreadPlan plan;
  if (requested > 0) {
    plan.text = plan.audio_per_job = plan.image_per_job = requested;
    return plan;
  }
  plan.text = cores_per_job(cpus, 1);
  plan.audio_per_job = cores_per_job(cpus, audio_parallel);
  plan.image_per_job = cores_per_job(cpus, image_parallel);
  return plan;
}

int threads_per_job(int configured, int parallel) {
  return configured > 0 ? configured : cores_per_job(count_cpus(), parallel);
}

std::string ThreadPlan::describe() const {
  return "text " + std::to_string(text) + ", audio " + std::to_string(audio_per_job) +
         " per transcription, image " + std::to_string(image_per_job) + " per generation";
}

}  // namespace allm
