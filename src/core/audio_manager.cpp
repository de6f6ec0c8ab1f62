#include "core/audio_manager.h"

#include <algorithm>
#include <cstdio>
#include <functional>

#include "audio/audio_decoder.h"
#include "audio/whisper_memory.h"
#include "base/log.h"
#include "core/cpu_threads.h"

namespace allm {

namespace {

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
    : config_(config),
      models_(registry, lifecycle, Modality::AUDIO,
              [this](const ModelEntry& entry) { return loader_for(entry); }),
      slots_(config.parallel, config.queue,
             {"transcriptions", "--audio-parallel, --audio-queue",
              seconds_text(config.timeout_seconds) + ", --audio-timeout"}) {}

AudioManager::~AudioManager() = default;

ModelLoader<WhisperModel> AudioManager::loader_for(const ModelEntry& entry) {
  return {
      [this, entry](MemoryEstimate* estimate) {
        *estimate = estimate_whisper_model(entry.path, config_.parallel);
        return Error{};
      },
      [entry](Error* load_error, uint64_t*) -> std::shared_ptr<WhisperModel> {
        const auto started = Clock::now();
        ALLM_LOG_INFO("loading audio model '%s' from %s", entry.id.c_str(), entry.path.c_str());
        std::string problem;
        std::shared_ptr<WhisperModel> model = WhisperModel::load(entry.path.string(), &problem);
        if (!model) {
          ALLM_LOG_ERROR("audio model '%s' failed to load: %s", entry.id.c_str(), problem.c_str());
          *load_error = make_error(ErrorCode::LOAD_FAILED, "model '" + entry.id + "': " + problem);
          return nullptr;
        }
        ALLM_LOG_INFO("audio model '%s' loaded in %.2f s", entry.id.c_str(),
                      std::chrono::duration<double>(Clock::now() - started).count());
        return model;
      }};
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

Error AudioManager::transcribe(const AudioRequest& request, const std::string& file,
                               Transcript* out) {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(config_.timeout_seconds));
  Error error;
  ModelLease<WhisperModel> model = models_.acquire(request.model, &error);
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

  // Polled between decoded chunks and from inside ggml's compute loop.
  JobStopCheck stop_check(deadline, request.client_gone, cancelling_);
  const std::function<bool()> should_abort = std::ref(stop_check);
  DecodedAudio audio;
  const AudioDecodeResult decoded =
      decode_audio(file, config_.max_audio_seconds, &audio, should_abort);
  if (decoded.status == AudioDecodeStatus::STOPPED) return aborted(request, stop_check.timed_out());
  if (decoded.status != AudioDecodeStatus::OK) return audio_problem(decoded);

  TranscribeOptions options;
  options.translate = request.task == AudioTask::TRANSLATE;
  options.language = request.language;
  options.prompt = request.prompt;
  options.temperature = request.temperature;
  options.temperature_increment = request.temperature_increment;
  options.word_timestamps = request.word_timestamps;
  options.threads = threads_per_job(config_.threads, config_.parallel);
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
    case WhisperRunStatus::ABORTED: return aborted(request, stop_check.timed_out());
    case WhisperRunStatus::FAILED: break;
  }
  return make_error(ErrorCode::INTERNAL, "whisper.cpp failed to transcribe the audio");
}

}  // namespace allm
