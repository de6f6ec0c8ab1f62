// The default thread counts (issue "Fast by default"): one thread per physical core for text,
// read from the CPU topology within the affinity mask and the cgroup quota.
#include "core/cpu_threads.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace allm {
namespace {

namespace fs = std::filesystem;

// A fake /sys/devices/system/cpu with `siblings[i]` as cpu i's thread_siblings_list.
struct FakeSysfs {
  fs::path root =
      fs::temp_directory_path() /
      ("allm-cpus-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
       ::testing::UnitTest::GetInstance()->current_test_info()->name());
  explicit FakeSysfs(const std::vector<std::string>& siblings) {
    for (size_t i = 0; i < siblings.size(); ++i) {
      const fs::path dir = root / "cpu" / ("cpu" + std::to_string(i)) / "topology";
      fs::create_directories(dir);
      std::ofstream(dir / "thread_siblings_list") << siblings[i] << "\n";
    }
    fs::create_directories(root / "cgroup");
  }
  ~FakeSysfs() { fs::remove_all(root); }
  void quota(const std::string& cpu_max) { std::ofstream(root / "cgroup" / "cpu.max") << cpu_max; }
  CpuCount count(const std::vector<int>& allowed) {
    return count_cpus(allowed, (root / "cpu").string(), (root / "cgroup").string());
  }
};

TEST(CpuThreads, SmtSiblingsAreOneCore) {
  FakeSysfs sys({"0,4", "1,5", "2,6", "3,7", "0,4", "1,5", "2,6", "3,7"});
  const CpuCount all = sys.count({0, 1, 2, 3, 4, 5, 6, 7});
  EXPECT_EQ(all.logical, 8);
  EXPECT_EQ(all.physical, 4);
  // An affinity mask of one core's two siblings and one more CPU: 2 cores.
  const CpuCount some = sys.count({0, 4, 1});
  EXPECT_EQ(some.logical, 3);
  EXPECT_EQ(some.physical, 2);
}

TEST(CpuThreads, CgroupQuotaCaps) {
  FakeSysfs sys({"0", "1", "2", "3", "4", "5", "6", "7"});
  sys.quota("max 100000\n");
  EXPECT_EQ(sys.count({0, 1, 2, 3, 4, 5, 6, 7}).physical, 8);
  sys.quota("250000 100000\n");  // 2.5 CPUs: 3 threads
  const CpuCount capped = sys.count({0, 1, 2, 3, 4, 5, 6, 7});
  EXPECT_EQ(capped.physical, 3);
  EXPECT_EQ(capped.logical, 3);
}

TEST(CpuThreads, NoTopologyCountsEveryCpu) {
  FakeSysfs sys({});
  const CpuCount c = sys.count({0, 1});
  EXPECT_GE(c.physical, 1);
  EXPECT_EQ(c.physical, c.logical);
}

TEST(CpuThreads, PlanGivesTextEveryCoreAndSplitsAudioAndImageSlots) {
  const ThreadPlan plan = plan_threads({16, 8}, 0, 2, 1);
  EXPECT_EQ(plan.text, 8);
  EXPECT_EQ(plan.audio_per_job, 4);
  EXPECT_EQ(plan.image_per_job, 8);
  const ThreadPlan small = plan_threads({2, 2}, 0, 4, 3);
  EXPECT_EQ(small.text, 2);
  EXPECT_EQ(small.audio_per_job, 1);
  EXPECT_EQ(small.image_per_job, 1);
}

TEST(CpuThreads, ExplicitThreadsApplyToEveryEngine) {
  const ThreadPlan plan = plan_threads({16, 8}, 3, 2, 1);
  EXPECT_EQ(plan.text, 3);
  EXPECT_EQ(plan.audio_per_job, 3);
  EXPECT_EQ(plan.image_per_job, 3);
}

// What every manager computes each job with: the configured count, else the plan's rule on this
// machine's cores for that many parallel jobs (text: one batch).
TEST(CpuThreads, ThreadsPerJobIsTheConfiguredCountOrThePlansRule) {
  EXPECT_EQ(threads_per_job(3, 2), 3);
  EXPECT_EQ(threads_per_job(5, 1), 5);
  const CpuCount cpus = count_cpus();
  EXPECT_EQ(threads_per_job(0, 1), plan_threads(cpus, 0, 1, 1).text);
  EXPECT_EQ(threads_per_job(0, 2), plan_threads(cpus, 0, 2, 1).audio_per_job);
  EXPECT_EQ(threads_per_job(0, 1000), 1);
}

}  // namespace
}  // namespace allm
