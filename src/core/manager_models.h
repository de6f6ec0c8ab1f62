// What the text, audio and image managers share to get at their models: the model a request
// names, found in the registry and checked to be of the manager's modality, then held loaded
// through the shared lifecycle (loaded once, within the memory plan, unloaded when idle).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "core/model_lifecycle.h"
#include "core/model_registry.h"

namespace allm {

// How a manager loads one registered model: `estimate` first (a problem found there is returned
// as is), then `load` (nullptr with *error set on failure; it may report what the engine says it
// uses in *measured_bytes). `healthy`, when set, tells whether a loaded model still works (one
// that lost a device does not: it is unloaded and loaded again by the next request).
template <typename Model>
struct ModelLoader {
  std::function<Error(MemoryEstimate*)> estimate;
  std::function<std::shared_ptr<Model>(Error* error, uint64_t* measured_bytes)> load;
  std::function<bool(const Model&)> healthy;
};

// The entry of model `id` when it exists and is of `modality`; else nullopt with *error set: 404
// model_not_found, or 400 saying what the model is (wrong_modality_error).
std::optional<ModelEntry> find_model_of(ModelRegistry& registry, Modality modality,
                                        const std::string& id, Error* error);

template <typename Model>
class ManagerModels {
 public:
  using LoaderFor = std::function<ModelLoader<Model>(const ModelEntry&)>;

  ManagerModels(ModelRegistry& registry, ModelLifecycle& lifecycle, Modality modality,
                LoaderFor loader_for)
      : registry_(registry),
        pool_(lifecycle, modality),
        modality_(modality),
        loader_for_(std::move(loader_for)) {}

  // The model with this request counted on it, loaded first when needed; empty with *error set.
  ModelLease<Model> acquire(const std::string& id, Error* error) {
    const std::optional<ModelEntry> entry = find_model_of(registry_, modality_, id, error);
    if (!entry) return {};
    ModelLoader<Model> loader = loader_for_(*entry);
    return pool_.acquire(id, std::move(loader.estimate), std::move(loader.load), error,
                         std::move(loader.healthy));
  }
  // Loads the model now (--preload); later requests find it ready.
  Error preload(const std::string& id) {
    Error error;
    acquire(id, &error);
    return error;
  }
  std::vector<std::pair<std::string, std::shared_ptr<Model>>> loaded() { return pool_.loaded(); }

 private:
  ModelRegistry& registry_;
  ModelPool<Model> pool_;
  const Modality modality_;
  const LoaderFor loader_for_;
};

}  // namespace allm
