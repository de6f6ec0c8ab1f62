// Generated PNGs kept for a short while, for response_format "url": GET /v1/images/files/{id}
// serves them until their time to live runs out.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace allm {

class ImageFileStore {
 public:
  explicit ImageFileStore(double ttl_seconds) : ttl_seconds_(ttl_seconds) {}

  // Keeps `png` and returns its id ("img_" and 24 random hex digits); forgets expired files.
  std::string put(std::string png);
  std::optional<std::string> find(const std::string& id);

 private:
  using Clock = std::chrono::steady_clock;

  const double ttl_seconds_;
  std::mutex mutex_;
  std::map<std::string, std::pair<Clock::time_point, std::string>> files_;  // id: expiry, PNG
};

}  // namespace allm
