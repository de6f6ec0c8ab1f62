#include "core/audio_manager.h"

#include <algorithm>
#include <cstdio>

#include "audio/audio_decoder.h"
#include "base/log.h"
#include "core/cpu_threads.h"
#include "core/memory_estimate.h"

namespace allm {

namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(100);

std::string seconds_text(double seconds) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g s", seconds);
  return buf;
}

Error audio_problem(const AudioDecodeResult& result) {
  return request_error(result.problem, "file",
                       result.status == AudioDecodeStatus::UNSUPPORTED_FORMAT
                           ? "unsupported_file_format"
                           : "invalid_file");
}

}  // namespace

AudioManager::AudioManager(ModelRegistry& registry, ModelLifecycle& lifecycle,
                           AudioManagerConfig config)
    : registry_(registry),
      config_(config),
      models_(lifecycle, Modality::AUDIO),
      slots_(config.parallel, config.queue,
             {"transcriptions", "--audio-parallel, --audio-queue",
              seconds_text(config.timeout_seconds) + ", --audio-timeout"}) {}

AudioManager::~AudioManager() = default;

Error AudioManager::preload(const std::string& model_id) {
  Error error;
  acquire(model_id, &error);
  return error;
}

ModelLease<WhisperModel> AudioManager::acquire(const std::string& model_id, Error* error) {
  std::optional<ModelEntry> entry = registry_.find(model_id);
  if (!entry) {
    *error = request_error("The model '" + quote_excerpt(model_id) + "' does not exist", "model",
                           "model_not_found");
    return {};
  }
  if (entry->modality != Modality::AUDIO) {
    *error = wrong_modality_error(model_id, entry->modality, Modality::AUDIO);
    return {};
  }
  return models_.acquire(
      model_id,
      [&](MemoryEstimate* estimate) {
        *estimate = estimate_whisper_model(entry->path, config_.parallel);
        return Error{};
      },
      [&](Error* load_error, uint64_t*) -> std::shared_ptr<WhisperModel> {
        const auto started = Clock::now();
        ALLM_LOG_INFO("loading audio model '%s' from %s", model_id.c_str(), entry->path.c_str());
        std::string problem;
        std::shared_ptr<WhisperModel> model = WhisperModel::load(entry->path.string(), &problem);
        if (!model) {
          ALLM_LOG_ERROR("audio model '%s' failed to load: %s", model_id.c_str(), problem.c_str());
          *load_error = make_error(ErrorCode::LOAD_FAILED, "model '" + model_id + "': " + problem);
          return nullptr;
        }
        ALLM_LOG_INFO("audio model '%s' loaded in %.2f s", model_id.c_str(),
                      std::chrono::duration<double>(Clock::now() - started).count());
        return model;
      },
      error);
}

// A job stopped by its should_abort: past the deadline, the client gone, or the server shutting
// down.
Error AudioManager::aborted(const AudioRequest& request, bool timed_out) const {
  const bool client_gone = request.client_gone && request.client_gone();
  // A client that left before the deadline but was not polled in time (a slow first encoder
  // step) is a cancellation: nobody is waiting for the 504.
  if (timed_out && !client_gone) {
    return make_error(ErrorCode::TIMEOUT, "the transcription ran past the time limit (" +
                                              seconds_text(config_.timeout_seconds) +
                                              ", --audio-timeout)");
  }
  const char* why = client_gone ? "the client disconnected" : "the server is shutting down";
  ALLM_LOG_INFO("model '%s': transcription cancelled (%s)", request.model.c_str(), why);
  return make_error(ErrorCode::CANCELLED, why);
}

int AudioManager::threads_per_job() const {
  // The server's rule (core/cpu_threads.h); `allm serve` passes its result in config_.threads.
  return plan_threads(count_cpus(), config_.threads, config_.parallel, 1).audio_per_job;
}

Error AudioManager::transcribe(const AudioRequest& request, const std::string& file,
                               Transcript* out) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(config_.timeout_seconds));
  Error error;
  ModelLease<WhisperModel> model = acquire(request.model, &error);
  if (!model) return error;
  if (!request.language.empty() && !WhisperModel::knows_language(request.language)) {
    return request_error("'" + request.language +
                             "' is not a language whisper knows (expected "
                             "an ISO-639-1 code such as en, de, ja)",
                         "language");
  }
  // A file whose header is already wrong is refused before it waits for a slot; decoding and
  // resampling (CPU and memory that grow with the audio) run in the admitted job, on its clock.
  const AudioDecodeResult header = check_audio_header(file, config_.max_audio_seconds);
  if (header.status != AudioDecodeStatus::OK) return audio_problem(header);

  const auto gone_or_cancelling = [&] {
    return (request.client_gone && request.client_gone()) || cancelling_;
  };
  if ((error = slots_.acquire(deadline, gone_or_cancelling))) return error;
  JobSlotHold slot(slots_);

  bool timed_out = false, cancelled = false;
  auto last_poll = Clock::now();
  // Polled between decoded chunks and from inside ggml's compute loop: the deadline is cheap to
  // check, the socket is looked at only every kPollInterval.
  auto should_abort = [&] {
    const auto now = Clock::now();
    if (now >= deadline) timed_out = true;
    if (!timed_out && request.client_gone && now - last_poll >= kPollInterval) {
      last_poll = now;
      cancelled = request.client_gone();
    }
    if (cancelling_) cancelled = true;
    return timed_out || cancelled;
  };
  DecodedAudio audio;
  const AudioDecodeResult decoded =
      decode_audio(file, config_.max_audio_seconds, &audio, should_abort);
  if (decoded.status == AudioDecodeStatus::STOPPED) return aborted(request, timed_out);
  if (decoded.status != AudioDecodeStatus::OK) return audio_problem(decoded);

  TranscribeOptions options;
  options.translate = request.task == AudioTask::TRANSLATE;
  options.language = request.language;
  options.prompt = request.prompt;
  options.temperature = request.temperature;
  options.temperature_increment = request.temperature_increment;
  options.word_timestamps = request.word_timestamps;
  options.threads = threads_per_job();
  const auto started = Clock::now();
  const WhisperRunStatus status = model->transcribe(audio.samples, options, should_abort, out);
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
  switch (status) {
    case WhisperRunStatus::OK:
      out->duration = audio.duration_seconds;
      ALLM_LOG_INFO("model '%s': %.2f s of audio transcribed in %.2f s (RTF %.3f)",
                    request.model.c_str(), audio.duration_seconds, seconds,
                    seconds / std::max(1e-9, audio.duration_seconds));
      return {};
    case WhisperRunStatus::ABORTED: return aborted(request, timed_out);
    case WhisperRunStatus::FAILED: break;
  }
  return make_error(ErrorCode::INTERNAL, "whisper.cpp failed to transcribe the audio");
}

}  // namespace allm
