#include "base/log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>

namespace allm {

static std::atomic<LogLevel> g_level{LogLevel::INFO};

void set_log_level(LogLevel level) {
  g_level = level;
}

void log_message(LogLevel level, const char* format, ...) {
  if (level < g_level.load()) return;
  static const char* names[] = {"debug", "info", "warn", "error"};
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::tm tm_utc{};
  gmtime_r(&now, &tm_utc);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm_utc);
  char line[4096];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof line, format, args);
  va_end(args);
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  std::fprintf(stderr, "%s %-5s %s\n", stamp, names[static_cast<int>(level)], line);
}

}  // namespace allm
