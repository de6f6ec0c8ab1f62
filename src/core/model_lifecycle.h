// The life of loaded models, for the text, audio and image managers together:
// - a model loads once, however many requests ask for it at the same moment;
// - before a load its estimate must fit the --max-memory budgets and the free RAM / GPU memory;
//   idle models of any modality are unloaded least recently used first to make room, and what
//   still cannot fit is refused with OOM_RAM / OOM_VRAM (507); a failed load leaves nothing
//   behind, so the model can be loaded later;
// - models idle for --keep-alive are unloaded;
// - /metrics and GET /v1/admin/models show each loaded model and what it is charged.
// A manager holds a ModelPool of its own model type; a request holds a ModelLease.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/memory_estimate.h"
#include "core/free_memory.h"
#include "core/memory_plan.h"
#include "core/model_registry.h"

namespace allm {

class Metrics;

// Requests running or waiting on one loaded model, and when it was last used: what keep-alive
// and eviction look at. Shared with whatever ends requests (the text scheduler's thread), so that
// ending a request never holds, and so never destroys, the model itself.
class ModelActivity {
 public:
  void begin() { requests_++; }
  void end() {
    touch();
    requests_--;
  }
  void touch();
  bool idle() const { return requests_.load() == 0; }
  int requests() const { return requests_.load(); }
  int64_t last_used() const { return last_used_.load(); }
  double idle_seconds() const;

 private:
  std::atomic<int> requests_{0};
  std::atomic<int64_t> last_used_{0};
};

// One request's hold on a loaded model: while it lives, the model is neither unloaded nor
// evicted.
template <typename Model>
class ModelLease {
 public:
  ModelLease() = default;
  ModelLease(std::shared_ptr<Model> model, std::shared_ptr<ModelActivity> activity)
      : model_(std::move(model)), activity_(std::move(activity)) {}
  ModelLease(ModelLease&& other) noexcept = default;
  ModelLease& operator=(ModelLease&& other) noexcept {
    end();
    model_ = std::move(other.model_);
    activity_ = std::move(other.activity_);
    return *this;
  }
  ModelLease(const ModelLease&) = delete;
  ModelLease& operator=(const ModelLease&) = delete;
  ~ModelLease() { end(); }

  explicit operator bool() const { return model_ != nullptr; }
  Model* operator->() const { return model_.get(); }
  Model& operator*() const { return *model_; }
  const std::shared_ptr<Model>& model() const { return model_; }
  // Hands the request over to the caller, who calls end() on the activity when it finishes.
  std::shared_ptr<ModelActivity> release() { return std::move(activity_); }

 private:
  void end() {
    if (activity_) activity_->end();
    activity_.reset();
  }
  std::shared_ptr<Model> model_;
  std::shared_ptr<ModelActivity> activity_;
};

struct LifecycleConfig {
  double keep_alive_seconds = 0;  // unload models idle this long; 0: keep them
  MemoryLimits max_memory;        // 0: no budget (free memory is always checked)
};

// A loaded model as `allm ps` shows it (GET /v1/admin/models).
struct LoadedModelState {
  std::string id;
  Modality modality = Modality::TEXT;
  MemoryCharge charge;      // what the memory plan counts for it
  int requests = 0;         // running or waiting
  double idle_seconds = 0;  // since its last request ended; 0 while it has requests
  // When --keep-alive will unload it if nothing comes; unset without keep-alive or while busy.
  std::optional<double> unloads_in_seconds;
};

class ModelLifecycle {
 public:
  using Clock = std::chrono::steady_clock;
  // How a manager loads one model. `estimate` runs first (a format problem found there is
  // returned as is); `load` returns the model, or nullptr with *error set, and may report what
  // the engine says it uses in *measured_bytes. A loaded model that `healthy` (when set) says
  // no longer works is unloaded (reason "unhealthy") and loaded again.
  struct Loader {
    std::function<Error(MemoryEstimate*)> estimate;
    std::function<std::shared_ptr<void>(Error*, uint64_t* measured_bytes)> load;
    std::function<bool(const void* model)> healthy;
  };
  struct Held {
    std::shared_ptr<void> model;
    std::shared_ptr<ModelActivity> activity;  // with this request counted
  };

  ModelLifecycle(LifecycleConfig config, FreeMemory& memory);
  ~ModelLifecycle();

  const LifecycleConfig& config() const { return config_; }
  // The loaded model with one more request counted on it, loading it first when needed.
  Held acquire(Modality modality, const std::string& id, const Loader& loader, Error* error);
  std::vector<std::pair<std::string, std::shared_ptr<void>>> loaded(Modality modality);
  // Every loaded model of every modality, in id order.
  std::vector<LoadedModelState> loaded_models();
  // allm_model_loaded / allm_model_memory_bytes / allm_model_vram_bytes for every loaded model.
  void publish_metrics(Metrics& metrics);
  // Unloads the models idle for --keep-alive (the keep-alive thread's work).
  void unload_idle();

 private:
  struct Resident {
    std::string id;
    Modality modality = Modality::TEXT;
    std::shared_ptr<void> model;
    std::shared_ptr<ModelActivity> activity;
    MemoryCharge charge;
  };
  using Key = std::pair<Modality, std::string>;
  class LoadInProgress;

  std::shared_ptr<Resident> load(Modality modality, const std::string& id, const Loader& loader,
                                 Error* error);
  // Takes an unhealthy resident out (mutex_ held); it is freed when its last request ends.
  std::shared_ptr<Resident> drop_unhealthy(std::map<Key, std::shared_ptr<Resident>>::iterator it);
  // Unloads idle models to fit `need` and reserves it until the load ends.
  Error make_room(const std::string& id, const MemoryEstimate& estimate, MemoryCharge* need);
  void keep_alive_loop();

  const LifecycleConfig config_;
  FreeMemory& memory_;
  std::mutex mutex_;
  std::map<Key, std::shared_ptr<Resident>> residents_;
  std::map<Key, std::shared_future<Error>> loading_;  // loads in progress and their outcome
  MemoryCharge reserved_;                             // for loads in progress
  std::condition_variable stop_keep_alive_;
  bool stopping_ = false;
  std::thread keep_alive_thread_;
};

// A manager's view of the lifecycle: its own modality and model type.
template <typename Model>
class ModelPool {
 public:
  using Load = std::function<std::shared_ptr<Model>(Error*, uint64_t* measured_bytes)>;

  ModelPool(ModelLifecycle& lifecycle, Modality modality)
      : lifecycle_(lifecycle), modality_(modality) {}

  ModelLease<Model> acquire(const std::string& id, std::function<Error(MemoryEstimate*)> estimate,
                            Load load, Error* error,
                            std::function<bool(const Model&)> healthy = nullptr) {
    ModelLifecycle::Loader loader{std::move(estimate),
                                  [load = std::move(load)](Error* e, uint64_t* measured) {
                                    return std::static_pointer_cast<void>(load(e, measured));
                                  },
                                  nullptr};
    if (healthy) {
      loader.healthy = [healthy = std::move(healthy)](const void* model) {
        return healthy(*static_cast<const Model*>(model));
      };
    }
    ModelLifecycle::Held held = lifecycle_.acquire(modality_, id, loader, error);
    if (!held.model) return {};
    return {std::static_pointer_cast<Model>(held.model), std::move(held.activity)};
  }

  std::vector<std::pair<std::string, std::shared_ptr<Model>>> loaded() {
    std::vector<std::pair<std::string, std::shared_ptr<Model>>> out;
    for (auto& [id, model] : lifecycle_.loaded(modality_))
      out.emplace_back(id, std::static_pointer_cast<Model>(model));
    return out;
  }

 private:
  ModelLifecycle& lifecycle_;
  const Modality modality_;
};

}  // namespace allm
