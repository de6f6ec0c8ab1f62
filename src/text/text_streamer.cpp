#include "text/text_streamer.h"

#include <algorithm>

#include "text/utf8.h"

namespace allm {

TextStreamer::TextStreamer(std::vector<std::string> stops) : stops_(std::move(stops)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
}

std::string TextStreamer::push(const std::string& bytes) {
  if (stopped_) return {};
  pending_ += bytes;
  size_t first_stop = std::string::npos;
  for (const std::string& stop : stops_) {
    const size_t at = pending_.find(stop);
    if (at < first_stop) {
      first_stop = at;
      matched_stop_ = stop;
    }
  }
  if (first_stop != std::string::npos) {
    stopped_ = true;
    std::string out = sanitize_utf8(pending_.substr(0, first_stop));
    pending_.clear();
    return out;
  }
  size_t release = pending_.size() - held_for_stop_prefix();
  release -= incomplete_utf8_tail(pending_.substr(0, release));
  std::string out = sanitize_utf8(pending_.substr(0, release));
  pending_.erase(0, release);
  return out;
}

std::string TextStreamer::finish() {
  if (stopped_) return {};
  std::string out = sanitize_utf8(pending_);
  pending_.clear();
  return out;
}

// The longest end of the pending text that could still grow into a stop sequence.
size_t TextStreamer::held_for_stop_prefix() const {
  size_t held = 0;
  for (const std::string& stop : stops_) {
    const size_t longest = std::min(stop.size() - 1, pending_.size());
    for (size_t len = longest; len > held; --len) {
      if (pending_.compare(pending_.size() - len, len, stop, 0, len) == 0) {
        held = len;
        break;
      }
    }
  }
  return held;
}

}  // namespace allm
