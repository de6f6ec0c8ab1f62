#include "core/model_lifecycle.h"

#include <algorithm>
#include <new>

#include "base/byte_size.h"
#include "base/compute_thread.h"
#include "base/log.h"
#include "core/metrics.h"

namespace allm {

void ModelActivity::touch() {
  last_used_ = ModelLifecycle::Clock::now().time_since_epoch().count();
}

double ModelActivity::idle_seconds() const {
  using Clock = ModelLifecycle::Clock;
  return std::chrono::duration<double>(Clock::now().time_since_epoch() -
                                       Clock::duration(last_used_.load()))
      .count();
}

ModelLifecycle::ModelLifecycle(LifecycleConfig config, FreeMemory& memory)
    : config_(config), memory_(memory) {
  Metrics& metrics = Metrics::global();
  metrics.set("allm_memory_budget_bytes", {}, static_cast<double>(config_.max_memory.ram));
  metrics.set("allm_vram_budget_bytes", {}, static_cast<double>(config_.max_memory.vram));
  if (config_.keep_alive_seconds > 0)
    keep_alive_thread_ = std::thread([this] { keep_alive_loop(); });
}

ModelLifecycle::~ModelLifecycle() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  stop_keep_alive_.notify_all();
  if (keep_alive_thread_.joinable()) keep_alive_thread_.join();
}

// The load one request runs, registered in loading_ for as long as it runs. It ends however the
// load ends, an exception from an estimate or a loader included: the requests waiting on it get an
// outcome, and a later request can load the model again. `lock` is the request's lock on mutex_.
class ModelLifecycle::LoadInProgress {
 public:
  LoadInProgress(ModelLifecycle& lifecycle, std::unique_lock<std::mutex>& lock, Key key)
      : lifecycle_(lifecycle), lock_(lock), key_(std::move(key)) {
    lifecycle_.loading_[key_] = outcome_.get_future().share();
  }
  LoadInProgress(const LoadInProgress&) = delete;
  LoadInProgress& operator=(const LoadInProgress&) = delete;
  ~LoadInProgress() {
    if (ended_) return;
    if (!lock_.owns_lock()) lock_.lock();
    end(make_error(ErrorCode::LOAD_FAILED,
                   "model '" + key_.second + "' failed to load (see the server log)"));
  }

  // With the lock held.
  void end(const Error& outcome) {
    lifecycle_.loading_.erase(key_);
    outcome_.set_value(outcome);
    ended_ = true;
  }

 private:
  ModelLifecycle& lifecycle_;
  std::unique_lock<std::mutex>& lock_;
  const Key key_;
  std::promise<Error> outcome_;
  bool ended_ = false;
};

ModelLifecycle::Held ModelLifecycle::acquire(Modality modality, const std::string& id,
                                             const Loader& loader, Error* error) {
  const Key key{modality, id};
  // A model that lost a device, taken out below: declared before the lock, so that it is freed
  // outside it (before a load of its replacement, or on return).
  std::shared_ptr<Resident> unhealthy;
  std::unique_lock<std::mutex> lock(mutex_);
  // Counting the request under mutex_ is what keeps eviction and keep-alive (which look at the
  // count under mutex_) from taking the model away before the request uses it.
  auto lease = [](const std::shared_ptr<Resident>& resident) {
    resident->activity->begin();
    return Held{resident->model, resident->activity};
  };
  for (;;) {
    if (auto it = residents_.find(key); it != residents_.end()) {
      if (!loader.healthy || loader.healthy(it->second->model.get())) return lease(it->second);
      unhealthy = drop_unhealthy(it);
      continue;
    }
    auto it = loading_.find(key);
    if (it == loading_.end()) break;
    std::shared_future<Error> pending = it->second;
    lock.unlock();
    const Error outcome = pending.get();
    lock.lock();
    if (outcome) {
      *error = outcome;
      return {};
    }
    // Loaded by another request; look again (it may have been unloaded in between).
  }
  LoadInProgress pending(*this, lock, key);
  lock.unlock();
  unhealthy.reset();
  std::shared_ptr<Resident> resident = load(modality, id, loader, error);
  lock.lock();
  if (resident) residents_[key] = resident;
  pending.end(resident ? Error{} : *error);
  if (!resident) return {};
  return lease(resident);
}

std::shared_ptr<ModelLifecycle::Resident> ModelLifecycle::drop_unhealthy(
    std::map<Key, std::shared_ptr<Resident>>::iterator it) {
  std::shared_ptr<Resident> dropped = std::move(it->second);
  residents_.erase(it);
  ALLM_LOG_WARN("unloading %s model '%s': it lost a device; loading it again",
                modality_name(dropped->modality), dropped->id.c_str());
  Metrics::global().add("allm_model_unloads_total",
                        {{"model", dropped->id}, {"reason", "unhealthy"}});
  return dropped;
}

std::shared_ptr<ModelLifecycle::Resident> ModelLifecycle::load(Modality modality,
                                                               const std::string& id,
                                                               const Loader& loader, Error* error) {
  MemoryEstimate estimate;
  if ((*error = loader.estimate(&estimate))) return nullptr;
  Metrics& metrics = Metrics::global();
  MemoryCharge need;
  if ((*error = make_room(id, estimate, &need))) {
    ALLM_LOG_ERROR("model '%s' not loaded: %s", id.c_str(), error->message.c_str());
    metrics.add("allm_model_loads_total", {{"model", id}, {"result", "error"}});
    return nullptr;
  }
  ALLM_LOG_INFO("%s model '%s' needs about %s%s (%s)", modality_name(modality), id.c_str(),
                format_bytes(need.total()).c_str(), need.vram ? " of GPU memory" : "",
                estimate.breakdown().c_str());
  uint64_t measured = 0;
  std::shared_ptr<void> model;
  // On a thread of its own: loading may run OpenMP regions (ggml converts weights to its AMX
  // layout in one), whose team would otherwise outlive the load on this long-lived thread and
  // throttle every later computation's barriers (measured: llama.cpp's decode 8 % slower on 2
  // cores with AMX).
  run_on_compute_thread([&] {
    try {
      model = loader.load(error, &measured);
    } catch (const std::bad_alloc&) {
      *error = make_error(ErrorCode::OOM_RAM, "model '" + id + "': out of memory while loading");
    } catch (const std::exception& e) {
      *error = make_error(ErrorCode::LOAD_FAILED, "model '" + id + "': " + e.what());
    }
  });
  if (!model && !*error) *error = make_error(ErrorCode::LOAD_FAILED, "model '" + id + "'");
  {
    std::lock_guard<std::mutex> lock(mutex_);
    reserved_ -= need;
  }
  metrics.add("allm_model_loads_total", {{"model", id}, {"result", model ? "ok" : "error"}});
  if (!model) return nullptr;
  auto resident = std::make_shared<Resident>();
  resident->id = id;
  resident->modality = modality;
  resident->model = std::move(model);
  resident->activity = std::make_shared<ModelActivity>();
  resident->activity->touch();
  resident->charge = place_estimate(estimate, need.vram > 0, measured);
  return resident;
}

Error ModelLifecycle::make_room(const std::string& id, const MemoryEstimate& estimate,
                                MemoryCharge* need) {
  const std::vector<GpuMemory> gpus = memory_.gpus();
  *need = place_estimate(estimate, !gpus.empty());
  MemoryNow now;
  now.limits = config_.max_memory;
  now.ram = memory_.ram();
  now.vram = usable_vram(estimate.gpu, gpus);
  std::vector<std::shared_ptr<Resident>> evicted;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    now.reserved = reserved_;
    std::vector<ResidentModel> view;
    std::vector<Key> keys;
    for (const auto& [key, r] : residents_) {
      view.push_back({r->id, r->charge, r->activity->idle(), r->activity->last_used()});
      keys.push_back(key);
    }
    const RoomPlan plan = plan_room({id, *need, estimate.breakdown()}, view, now);
    if (plan.error) return plan.error;
    for (size_t i : plan.evict) {
      auto it = residents_.find(keys[i]);
      const Resident& r = *it->second;
      ALLM_LOG_INFO("unloading %s model '%s' (memory, idle for %.1f s, %s) to load '%s'",
                    modality_name(r.modality), r.id.c_str(), r.activity->idle_seconds(),
                    format_bytes(r.charge.total()).c_str(), id.c_str());
      Metrics::global().add("allm_model_unloads_total", {{"model", r.id}, {"reason", "memory"}});
      evicted.push_back(std::move(it->second));
      residents_.erase(it);
    }
    reserved_ += *need;
  }
  evicted.clear();  // unloads, outside the lock, before the new model loads
  return {};
}

std::vector<std::pair<std::string, std::shared_ptr<void>>> ModelLifecycle::loaded(
    Modality modality) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::pair<std::string, std::shared_ptr<void>>> out;
  for (const auto& [key, r] : residents_) {
    if (r->modality == modality) out.emplace_back(r->id, r->model);
  }
  return out;
}

std::vector<LoadedModelState> ModelLifecycle::loaded_models() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<LoadedModelState> out;
  for (const auto& [key, r] : residents_) {
    LoadedModelState state;
    state.id = r->id;
    state.modality = r->modality;
    state.charge = r->charge;
    state.requests = r->activity->requests();
    if (state.requests == 0) {
      state.idle_seconds = r->activity->idle_seconds();
      if (config_.keep_alive_seconds > 0)
        state.unloads_in_seconds = std::max(0.0, config_.keep_alive_seconds - state.idle_seconds);
    }
    out.push_back(std::move(state));
  }
  std::sort(out.begin(), out.end(),
            [](const LoadedModelState& a, const LoadedModelState& b) { return a.id < b.id; });
  return out;
}

void ModelLifecycle::publish_metrics(Metrics& metrics) {
  // Read now: models unloaded since the last scrape drop out.
  for (const char* name : {"allm_model_loaded", "allm_model_memory_bytes", "allm_model_vram_bytes"})
    metrics.reset(name);
  for (const LoadedModelState& model : loaded_models()) {
    metrics.set("allm_model_loaded",
                {{"model", model.id}, {"modality", modality_name(model.modality)}}, 1);
    metrics.set("allm_model_memory_bytes", {{"model", model.id}},
                static_cast<double>(model.charge.total()));
    metrics.set("allm_model_vram_bytes", {{"model", model.id}},
                static_cast<double>(model.charge.vram));
  }
}

void ModelLifecycle::unload_idle() {
  std::vector<std::shared_ptr<Resident>> idle;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = residents_.begin(); it != residents_.end();) {
      const Resident& r = *it->second;
      if (r.activity->idle() && r.activity->idle_seconds() >= config_.keep_alive_seconds) {
        ALLM_LOG_INFO("unloading model '%s' (idle for %.1f s, --keep-alive %g)", r.id.c_str(),
                      r.activity->idle_seconds(), config_.keep_alive_seconds);
        Metrics::global().add("allm_model_unloads_total",
                              {{"model", r.id}, {"reason", "keep_alive"}});
        idle.push_back(std::move(it->second));
        it = residents_.erase(it);
      } else {
        ++it;
      }
    }
  }
  idle.clear();  // unloads, outside the lock
}

void ModelLifecycle::keep_alive_loop() {
  const auto period = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::clamp(config_.keep_alive_seconds / 4, 0.05, 1.0)));
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    stop_keep_alive_.wait_for(lock, period, [this] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    unload_idle();
    lock.lock();
  }
}

}  // namespace allm
