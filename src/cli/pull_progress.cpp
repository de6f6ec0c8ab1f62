#include <safetensors.h>
#include <unistd.h>

#include <sstream>

#include "base/byte_size.h"
#include "base/log.h"
#include "cli/pull.h"

namespace allm {

using Clock = std::chrono::steady_clock;

ConsoleProgress::ConsoleProgress(std::FILE* out) : out_(out), tty_(isatty(fileno(out)) != 0) {}

void ConsoleProgress::file_started(const std::string& file, uint64_t) {
  file_ = file;
  started_ = Clock::now();
  last_draw_ = {};
}

static std::string format_seconds(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%ldh%02ldm", s / 3600, s / 60 % 60);
  } else {
    std::snprintf(text, sizeof text, "%ldm%02lds", s / 60, s % 60);
  }
  return text;
}

void ConsoleProgress::file_progress(uint64_t bytes, uint64_t size) {
  if (!tty_) return;
  const auto now = Clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100) && bytes != size) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - started_).count();
  const double rate = elapsed > 0 ? bytes / elapsed : 0;
  constexpr int kWidth = 24;
  const int filled = size ? static_cast<int>(kWidth * static_cast<double>(bytes) / size) : 0;
  const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '-');
  const std::string eta =
      rate > 0 && size > bytes ? format_seconds((size - bytes) / rate) : std::string("--");
  std::fprintf(out_, "\r\033[K%s [%s] %s / %s  %s/s  ETA %s", file_.c_str(), bar.c_str(),
               format_bytes(bytes).c_str(), format_bytes(size).c_str(),
               format_bytes(static_cast<uint64_t>(rate)).c_str(), eta.c_str());
  std::fflush(out_);
}

void ConsoleProgress::file_done(const std::string& file, uint64_t size, bool downloaded) {
  if (tty_ && downloaded) std::fputs("\r\033[K", out_);
  if (!downloaded) {
    std::fprintf(out_, "%s  %s  cached\n", file.c_str(), format_bytes(size).c_str());
  } else {
    const double seconds = std::chrono::duration<double>(Clock::now() - started_).count();
    std::fprintf(out_, "%s  %s  downloaded in %.1f s\n", file.c_str(), format_bytes(size).c_str(),
                 seconds);
  }
  std::fflush(out_);
}

void LogProgress::file_started(const std::string& file, uint64_t size) {
  next_tenth_ = 1;
  ALLM_LOG_INFO("pull: downloading %s (%s)", file.c_str(), format_bytes(size).c_str());
}

void LogProgress::file_progress(uint64_t bytes, uint64_t size) {
  if (size == 0 || bytes * 10 < size * static_cast<uint64_t>(next_tenth_) || bytes == size) return;
  ALLM_LOG_INFO("pull: %d%% (%s of %s)", next_tenth_ * 10, format_bytes(bytes).c_str(),
                format_bytes(size).c_str());
  next_tenth_ = static_cast<int>(bytes * 10 / size) + 1;
}

void LogProgress::file_done(const std::string& file, uint64_t size, bool downloaded) {
  ALLM_LOG_INFO("pull: %s %s (%s)", downloaded ? "downloaded" : "cached", file.c_str(),
                format_bytes(size).c_str());
}

std::vector<std::string> supported_model_types() {
  std::vector<std::string> types;
  std::stringstream list(stcpp_supported_architectures());
  std::string type;
  while (std::getline(list, type, ',')) {
    while (!type.empty() && type.front() == ' ') type.erase(type.begin());
    if (!type.empty()) types.push_back(type);
  }
  return types;
}

}  // namespace allm
