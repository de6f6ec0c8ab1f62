// The model lifecycle the three managers share, with fake models and a fake machine (any free
// RAM, any GPU): one load for concurrent requests, one budget and one LRU across modalities,
// OOM_RAM / OOM_VRAM refusals, recovery from failed loads, keep-alive, metrics.
#include "core/model_lifecycle.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>

#include "core/metrics.h"

namespace allm {
namespace {

constexpr uint64_t GiB = 1ull << 30;

// The machine the lifecycle sees.
class FakeMemory : public FreeMemory {
 public:
  std::optional<uint64_t> free_ram = 64 * GiB;
  std::vector<GpuMemory> gpu_list;  // empty: no GPU backend
  bool unreadable = false;          // reading free RAM throws
  std::optional<uint64_t> ram() override {
    if (unreadable) throw std::runtime_error("/proc/meminfo: unreadable");
    return free_ram;
  }
  std::vector<GpuMemory> gpus() override { return gpu_list; }
};

struct FakeModel {
  explicit FakeModel(std::atomic<int>* alive) : alive(alive) { ++*alive; }
  ~FakeModel() { --*alive; }
  std::atomic<int>* alive;
};

MemoryEstimate bytes(uint64_t n, GpuUse gpu = GpuUse::NONE) {
  MemoryEstimate e;
  e.weights = n;
  e.gpu = gpu;
  return e;
}

// Each test uses model ids of its own: the metrics registry is process-wide.
class LifecycleTest : public ::testing::Test {
 protected:
  void start(LifecycleConfig config = {}) {
    lifecycle = std::make_unique<ModelLifecycle>(config, memory);
    text = std::make_unique<ModelPool<FakeModel>>(*lifecycle, Modality::TEXT);
    audio = std::make_unique<ModelPool<FakeModel>>(*lifecycle, Modality::AUDIO);
  }

  ModelLease<FakeModel> get(ModelPool<FakeModel>& pool, const std::string& id,
                            MemoryEstimate estimate, Error* error, Error fail = {}) {
    return pool.acquire(
        id,
        [estimate](MemoryEstimate* e) {
          *e = estimate;
          return Error{};
        },
        [this, fail](Error* e, uint64_t*) -> std::shared_ptr<FakeModel> {
          ++loads;
          if (fail) {
            *e = fail;
            return nullptr;
          }
          return std::make_shared<FakeModel>(&alive);
        },
        error);
  }

  bool loaded(const std::string& id, const char* modality) {
    lifecycle->publish_metrics(Metrics::global());
    return Metrics::global().value("allm_model_loaded", {{"model", id}, {"modality", modality}}) ==
           1;
  }

  FakeMemory memory;
  std::atomic<int> alive{0};
  std::atomic<int> loads{0};
  std::unique_ptr<ModelLifecycle> lifecycle;
  std::unique_ptr<ModelPool<FakeModel>> text, audio;
};

TEST_F(LifecycleTest, ConcurrentFirstRequestsLoadOnce) {
  start();
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      Error error;
      auto lease = text->acquire(
          "once",
          [](MemoryEstimate* e) {
            *e = bytes(1000);
            return Error{};
          },
          [&](Error*, uint64_t*) {
            ++loads;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            return std::make_shared<FakeModel>(&alive);
          },
          &error);
      if (lease) ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok, 8);
  EXPECT_EQ(loads, 1);
  EXPECT_EQ(alive, 1);
  EXPECT_TRUE(loaded("once", "text"));
}

// A load runs on a thread that ends with it (OpenMP teams a load starts must not outlive it on
// the caller's long-lived thread: compute_thread.h); what it throws there is still the
// request's error.
TEST_F(LifecycleTest, LoadsRunOnAThreadOfTheirOwn) {
  start();
  const std::thread::id caller = std::this_thread::get_id();
  std::thread::id loader;
  Error error;
  const auto estimate = [](MemoryEstimate* e) {
    *e = bytes(1000);
    return Error{};
  };
  auto lease = text->acquire(
      "own-thread", estimate,
      [&](Error*, uint64_t*) {
        loader = std::this_thread::get_id();
        return std::make_shared<FakeModel>(&alive);
      },
      &error);
  ASSERT_TRUE(lease) << error.message;
  EXPECT_NE(loader, caller);
  EXPECT_NE(loader, std::thread::id());

  auto failed = text->acquire(
      "own-thread-throws", estimate,
      [](Error*, uint64_t*) -> std::shared_ptr<FakeModel> {
        throw std::runtime_error("unreadable weights");
      },
      &error);
  EXPECT_FALSE(failed);
  EXPECT_EQ(error.code, ErrorCode::LOAD_FAILED);
  EXPECT_NE(error.message.find("unreadable weights"), std::string::npos);
}

TEST_F(LifecycleTest, OneBudgetAndOneLruAcrossModalities) {
  LifecycleConfig config;
  config.max_memory.ram = 150;
  start(config);
  Error error;
  { ASSERT_TRUE(get(*text, "lru-text", bytes(100), &error)) << error.message; }
  EXPECT_EQ(alive, 1);
  // An audio model needs the room the idle text model holds: the text model goes.
  const double before = Metrics::global().value("allm_model_unloads_total",
                                                {{"model", "lru-text"}, {"reason", "memory"}});
  { ASSERT_TRUE(get(*audio, "lru-whisper", bytes(100), &error)) << error.message; }
  EXPECT_EQ(alive, 1);
  EXPECT_FALSE(loaded("lru-text", "text"));
  EXPECT_TRUE(loaded("lru-whisper", "audio"));
  EXPECT_EQ(Metrics::global().value("allm_model_unloads_total",
                                    {{"model", "lru-text"}, {"reason", "memory"}}),
            before + 1);
  // And back: the idle audio model makes room for the text model.
  { ASSERT_TRUE(get(*text, "lru-text", bytes(100), &error)) << error.message; }
  EXPECT_TRUE(loaded("lru-text", "text"));
  EXPECT_FALSE(loaded("lru-whisper", "audio"));
  EXPECT_EQ(loads, 3);
}

TEST_F(LifecycleTest, BusyModelsStayAndTheNewOneIsRefusedWithOomRam) {
  LifecycleConfig config;
  config.max_memory.ram = 150;
  start(config);
  Error error;
  auto busy = get(*audio, "busy-whisper", bytes(100), &error);
  ASSERT_TRUE(busy);
  auto refused = get(*text, "busy-text", bytes(100), &error);
  EXPECT_FALSE(refused);
  EXPECT_EQ(error.code, ErrorCode::OOM_RAM);
  EXPECT_NE(error.message.find("held by models that are busy"), std::string::npos);
  EXPECT_EQ(alive, 1);
  // Once the request is over the model is idle and can be unloaded for the other.
  busy = {};
  error = {};
  EXPECT_TRUE(get(*text, "busy-text", bytes(100), &error)) << error.message;

  auto huge = get(*text, "too-big", bytes(1000), &error);
  EXPECT_FALSE(huge);
  EXPECT_EQ(error.code, ErrorCode::OOM_RAM);
  EXPECT_NE(error.message.find("more than the memory budget"), std::string::npos);
  EXPECT_NE(error.message.find("--max-memory"), std::string::npos);
}

TEST_F(LifecycleTest, FreeRamIsCheckedWithoutABudget) {
  memory.free_ram = 500;
  start();
  Error error;
  EXPECT_FALSE(get(*text, "no-room", bytes(1000), &error));
  EXPECT_EQ(error.code, ErrorCode::OOM_RAM);
  EXPECT_NE(error.message.find("of RAM is available"), std::string::npos);
  EXPECT_EQ(loads, 0);
}

TEST_F(LifecycleTest, RefusesWithOomVramWhenTheFakeGpuIsTooSmall) {
  memory.gpu_list = {{"Fake GPU", 2 * GiB, 8 * GiB}};
  start();
  Error error;
  // A llama.cpp model of 3 GiB goes to the GPU, where 2 GiB are free.
  MemoryEstimate llm = bytes(3 * GiB, GpuUse::ALL_GPUS);
  llm.kv_cache = 0;
  EXPECT_FALSE(get(*text, "vram-llm", llm, &error));
  EXPECT_EQ(error.code, ErrorCode::OOM_VRAM);
  EXPECT_EQ(error.message,
            "model 'vram-llm' needs about 3.00 GiB of GPU memory (weights 3.00 GiB) but only 2.00 "
            "GiB is free on the GPU");
  EXPECT_EQ(loads, 0);
  // A CPU-only engine's model of the same size loads into RAM.
  error = {};
  EXPECT_TRUE(get(*text, "vram-cpu", bytes(3 * GiB), &error)) << error.message;
  lifecycle->publish_metrics(Metrics::global());
  EXPECT_EQ(Metrics::global().value("allm_model_vram_bytes", {{"model", "vram-cpu"}}), 0);
  // A model that fits on the GPU is charged there.
  EXPECT_TRUE(get(*audio, "vram-whisper", bytes(GiB, GpuUse::FIRST_GPU), &error));
  lifecycle->publish_metrics(Metrics::global());
  EXPECT_EQ(Metrics::global().value("allm_model_vram_bytes", {{"model", "vram-whisper"}}), GiB);
  EXPECT_EQ(Metrics::global().value("allm_model_memory_bytes", {{"model", "vram-whisper"}}), GiB);
}

TEST_F(LifecycleTest, TheVramBudgetEvictsGpuModelsOnly) {
  memory.gpu_list = {{"Fake GPU", 80 * GiB, 80 * GiB}};
  LifecycleConfig config;
  config.max_memory = {4 * GiB, 3 * GiB};
  start(config);
  Error error;
  EXPECT_TRUE(get(*text, "budget-cpu", bytes(GiB), &error)) << error.message;
  EXPECT_TRUE(get(*audio, "budget-gpu-1", bytes(2 * GiB, GpuUse::FIRST_GPU), &error));
  EXPECT_TRUE(get(*text, "budget-gpu-2", bytes(2 * GiB, GpuUse::ALL_GPUS), &error));
  EXPECT_TRUE(loaded("budget-cpu", "text"));
  EXPECT_FALSE(loaded("budget-gpu-1", "audio"));
  EXPECT_FALSE(get(*text, "budget-gpu-3", bytes(4 * GiB, GpuUse::ALL_GPUS), &error));
  EXPECT_EQ(error.code, ErrorCode::OOM_VRAM);
  EXPECT_NE(error.message.find("(--max-memory vram=)"), std::string::npos);
}

TEST_F(LifecycleTest, AFailedLoadLeavesNothingBehindAndCanBeRetried) {
  LifecycleConfig config;
  config.max_memory.ram = 100;
  start(config);
  Error error;
  EXPECT_FALSE(
      get(*text, "flaky", bytes(100), &error, make_error(ErrorCode::MODEL_CORRUPT, "bad file")));
  EXPECT_EQ(error.code, ErrorCode::MODEL_CORRUPT);
  EXPECT_FALSE(loaded("flaky", "text"));
  // The reservation is gone: the whole budget is free for the retry.
  error = {};
  EXPECT_TRUE(get(*text, "flaky", bytes(100), &error)) << error.message;
  EXPECT_EQ(loads, 2);
  // A loader that throws is a failed load too.
  auto thrown = text->acquire(
      "throws",
      [](MemoryEstimate* e) {
        *e = bytes(1);
        return Error{};
      },
      [](Error*, uint64_t*) -> std::shared_ptr<FakeModel> { throw std::bad_alloc(); }, &error);
  EXPECT_FALSE(thrown);
  EXPECT_EQ(error.code, ErrorCode::OOM_RAM);
  // Estimate problems (format errors) come back as they are, before any load.
  auto mismatch = text->acquire(
      "mismatch", [](MemoryEstimate*) { return make_error(ErrorCode::FORMAT_MISMATCH, "no gguf"); },
      [](Error*, uint64_t*) -> std::shared_ptr<FakeModel> { return nullptr; }, &error);
  EXPECT_FALSE(mismatch);
  EXPECT_EQ(error.code, ErrorCode::FORMAT_MISMATCH);
}

// An exception from the estimate or from making room ends the load too: the model is not left
// "loading" for every later request.
TEST_F(LifecycleTest, AnExceptionBeforeTheLoadLeavesNothingBehind) {
  LifecycleConfig config;
  config.max_memory.ram = 100;
  start(config);
  Error error;
  auto estimate_throws = [](MemoryEstimate*) -> Error { throw std::runtime_error("estimate"); };
  auto never_loads = [](Error*, uint64_t*) -> std::shared_ptr<FakeModel> {
    ADD_FAILURE() << "loaded after a failed estimate";
    return nullptr;
  };
  EXPECT_THROW(text->acquire("estimate-throws", estimate_throws, never_loads, &error),
               std::runtime_error);
  EXPECT_TRUE(get(*text, "estimate-throws", bytes(100), &error)) << error.message;

  memory.unreadable = true;
  EXPECT_THROW(get(*text, "room-throws", bytes(100), &error), std::runtime_error);
  memory.unreadable = false;
  EXPECT_TRUE(get(*text, "room-throws", bytes(100), &error)) << error.message;
  EXPECT_EQ(loads, 2);
  // Nothing stayed reserved: the second model took the first one's room, the whole budget.
  EXPECT_FALSE(loaded("estimate-throws", "text"));
}

TEST_F(LifecycleTest, KeepAliveUnloadsIdleModelsOfEveryModality) {
  LifecycleConfig config;
  config.keep_alive_seconds = 0.1;
  start(config);
  Error error;
  { EXPECT_TRUE(get(*text, "idle-text", bytes(10), &error)); }
  { EXPECT_TRUE(get(*audio, "idle-whisper", bytes(10), &error)); }
  auto held = get(*audio, "held-whisper", bytes(10), &error);
  EXPECT_EQ(alive, 3);
  for (int i = 0; i < 100 && alive > 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(alive, 1);  // the one with a request on it stays
  EXPECT_TRUE(loaded("held-whisper", "audio"));
  EXPECT_EQ(Metrics::global().value("allm_model_unloads_total",
                                    {{"model", "idle-whisper"}, {"reason", "keep_alive"}}),
            1);
  // The request's end makes it idle; it goes in turn.
  held = {};
  for (int i = 0; i < 100 && alive > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(alive, 0);
}

TEST_F(LifecycleTest, LoadedModelsSayWhatTheyHoldAndWhenKeepAliveUnloadsThem) {
  LifecycleConfig config;
  config.keep_alive_seconds = 600;
  start(config);
  memory.gpu_list = {{"GPU0", 8 * GiB, 8 * GiB}};
  Error error;
  { EXPECT_TRUE(get(*text, "state-text", bytes(3 * GiB, GpuUse::ALL_GPUS), &error)); }
  auto held = get(*audio, "state-audio", bytes(GiB), &error);
  const std::vector<LoadedModelState> models = lifecycle->loaded_models();
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].id, "state-audio");  // in id order
  EXPECT_EQ(models[0].modality, Modality::AUDIO);
  EXPECT_EQ(models[0].requests, 1);
  EXPECT_EQ(models[0].idle_seconds, 0);
  EXPECT_FALSE(models[0].unloads_in_seconds);  // busy: keep-alive waits
  EXPECT_EQ(models[0].charge.ram, GiB);
  EXPECT_EQ(models[1].id, "state-text");
  EXPECT_EQ(models[1].requests, 0);
  EXPECT_EQ(models[1].charge.vram, 3 * GiB);
  EXPECT_GE(models[1].idle_seconds, 0);
  ASSERT_TRUE(models[1].unloads_in_seconds);
  EXPECT_NEAR(*models[1].unloads_in_seconds, 600 - models[1].idle_seconds, 1e-9);
}

TEST_F(LifecycleTest, WithoutKeepAliveNothingIsDueToUnload) {
  start();
  Error error;
  { EXPECT_TRUE(get(*text, "forever-text", bytes(10), &error)); }
  const std::vector<LoadedModelState> models = lifecycle->loaded_models();
  ASSERT_EQ(models.size(), 1u);
  EXPECT_FALSE(models[0].unloads_in_seconds);
}

// A model that lost a device (an RPC worker) is unloaded by the next request, which loads it
// again; a request still holding the broken one keeps it until it ends.
TEST_F(LifecycleTest, AnUnhealthyModelIsLoadedAgainByTheNextRequest) {
  start();
  std::atomic<bool> broken{false};
  const auto get_checked = [&](Error* error) {
    return text->acquire(
        "flaky-text",
        [](MemoryEstimate* e) {
          *e = bytes(10);
          return Error{};
        },
        [this](Error*, uint64_t*) {
          ++loads;
          return std::make_shared<FakeModel>(&alive);
        },
        error, [&](const FakeModel&) { return !broken.load(); });
  };
  Error error;
  auto first = get_checked(&error);
  ASSERT_TRUE(first);
  { EXPECT_EQ(get_checked(&error).model(), first.model()); }  // healthy: the same model
  EXPECT_EQ(loads, 1);
  const double unloads_before = Metrics::global().value(
      "allm_model_unloads_total", {{"model", "flaky-text"}, {"reason", "unhealthy"}});
  broken = true;
  auto second = get_checked(&error);
  broken = false;
  ASSERT_TRUE(second);
  EXPECT_NE(second.model(), first.model());
  EXPECT_EQ(loads, 2);
  EXPECT_EQ(alive, 2);  // the first request still holds the broken one
  first = {};
  EXPECT_EQ(alive, 1);
  EXPECT_EQ(Metrics::global().value("allm_model_unloads_total",
                                    {{"model", "flaky-text"}, {"reason", "unhealthy"}}),
            unloads_before + 1);
}

TEST(ModelLease, ReleaseHandsTheRequestOver) {
  auto activity = std::make_shared<ModelActivity>();
  activity->begin();
  std::shared_ptr<ModelActivity> handed;
  {
    ModelLease<int> lease(std::make_shared<int>(7), activity);
    EXPECT_EQ(*lease, 7);
    handed = lease.release();
    EXPECT_TRUE(lease);  // still usable until it goes out of scope
  }
  EXPECT_FALSE(activity->idle());
  handed->end();
  EXPECT_TRUE(activity->idle());
}

}  // namespace
}  // namespace allm
