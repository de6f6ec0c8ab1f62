// AudioManager: runs the whisper models (loaded on first use through the shared model lifecycle,
// shared by every request), admits a bounded number of transcriptions at once with a bounded
// queue behind them, and enforces the per-request time limit, client cancellation and the audio
// duration limit.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "audio/whisper_runner.h"
#include "base/error.h"
#include "core/job_slots.h"
#include "core/manager_models.h"

namespace allm {

struct AudioManagerConfig {
  int parallel = 2;                 // transcriptions running at once, all models together
  int queue = 8;                    // requests waiting for a slot; beyond that, 429
  double max_audio_seconds = 1800;  // longer uploads are refused (400)
  double timeout_seconds = 600;     // per request, waiting included (504 TIMEOUT)
  int threads = 0;                  // CPU threads per transcription; 0: cores / parallel
};

enum class AudioTask { TRANSCRIBE, TRANSLATE };

struct AudioRequest {
  std::string model;
  AudioTask task = AudioTask::TRANSCRIBE;
  std::string language;  // ISO-639-1; empty: detected
  std::string prompt;
  float temperature = 0.0f;
  float temperature_increment = kWhisperTemperatureIncrement;
  bool word_timestamps = false;
  std::function<bool()> client_gone;  // polled while waiting and running; may be empty
};

class AudioManager {
 public:
  AudioManager(ModelRegistry& registry, ModelLifecycle& lifecycle, AudioManagerConfig config);
  ~AudioManager();

  Error preload(const std::string& model_id) { return models_.preload(model_id); }
  // Checks the uploaded `file`'s header, waits for a slot, then decodes and transcribes it (both
  // within the time limit); blocks until done.
  Error transcribe(const AudioRequest& request, const std::string& file, Transcript* out);
  // Aborts running and waiting transcriptions with CANCELLED (shutdown past its grace period).
  void cancel_all() { cancelling_ = true; }

 private:
  using Clock = std::chrono::steady_clock;

  ModelLoader<WhisperModel> loader_for(const ModelEntry& entry);
  Error aborted(const AudioRequest& request, bool timed_out) const;

  AudioManagerConfig config_;
  ManagerModels<WhisperModel> models_;
  JobSlots slots_;
  std::atomic<bool> cancelling_{false};
};

}  // namespace allm
