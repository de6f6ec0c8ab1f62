// Loads each model once, however many requests ask for it at the same moment, and keeps it for
// every later request. The first caller loads; the others wait for its outcome.
#pragma once

#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace allm {

template <typename Model>
class LoadOnce {
 public:
  using Loader = std::function<std::shared_ptr<Model>(Error*)>;

  std::shared_ptr<Model> get(const std::string& id, const Loader& load, Error* error) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (auto it = loaded_.find(id); it != loaded_.end()) return it->second;
    if (auto it = loading_.find(id); it != loading_.end()) {
      auto pending = it->second;
      lock.unlock();
      const Outcome& outcome = pending.get();
      if (!outcome.first) *error = outcome.second;
      return outcome.first;
    }
    std::promise<Outcome> promise;
    loading_[id] = promise.get_future().share();
    lock.unlock();
    std::shared_ptr<Model> model = load(error);
    lock.lock();
    if (model) loaded_[id] = model;
    loading_.erase(id);
    promise.set_value({model, *error});
    return model;
  }

  std::vector<std::pair<std::string, std::shared_ptr<Model>>> loaded() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {loaded_.begin(), loaded_.end()};
  }

 private:
  using Outcome = std::pair<std::shared_ptr<Model>, Error>;
  std::mutex mutex_;
  std::map<std::string, std::shared_future<Outcome>> loading_;
  std::map<std::string, std::shared_ptr<Model>> loaded_;
};

}  // namespace allm
