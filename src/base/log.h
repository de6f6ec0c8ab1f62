// One line per event on stderr, with time and level.
#pragma once

namespace allm {

enum class LogLevel { DEBUG, INFO, WARN, ERROR };

void set_log_level(LogLevel level);
void log_message(LogLevel level, const char* format, ...) __attribute__((format(printf, 2, 3)));

#define ALLM_LOG_INFO(...) ::allm::log_message(::allm::LogLevel::INFO, __VA_ARGS__)
#define ALLM_LOG_WARN(...) ::allm::log_message(::allm::LogLevel::WARN, __VA_ARGS__)
#define ALLM_LOG_ERROR(...) ::allm::log_message(::allm::LogLevel::ERROR, __VA_ARGS__)
#define ALLM_LOG_DEBUG(...) ::allm::log_message(::allm::LogLevel::DEBUG, __VA_ARGS__)

}  // namespace allm
