#include "core/image_file_store.h"

#include <cstdio>
#include <iterator>
#include <random>

namespace allm {

std::string ImageFileStore::put(std::string png) {
  std::random_device device;
  char id[33];
  std::snprintf(id, sizeof id, "img_%08x%08x%08x", device(), device(), device());
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = Clock::now();
  for (auto it = files_.begin(); it != files_.end();) {  // forget the expired ones
    it = it->second.first <= now ? files_.erase(it) : std::next(it);
  }
  files_[id] = {now + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(ttl_seconds_)),
                std::move(png)};
  return id;
}

std::optional<std::string> ImageFileStore::find(const std::string& id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = files_.find(id);
  if (it == files_.end() || it->second.first <= Clock::now()) return std::nullopt;
  return it->second.second;
}

}  // namespace allm
