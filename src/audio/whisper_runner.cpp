#include "audio/whisper_runner.h"

#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <mutex>

#include "audio/audio_decoder.h"
#include "base/compute_thread.h"
#include "base/ggml_log.h"
#include "whisper.h"

namespace allm {

namespace {

void init_whisper_once() {
  static std::once_flag once;
  std::call_once(once, [] { whisper_log_set(forward_ggml_log, const_cast<char*>("whisper.cpp")); });
}

// Remembers whether the caller asked to stop, for both of whisper's abort hooks.
struct AbortProbe {
  const std::function<bool()>* should_abort;
  bool aborted = false;

  bool poll() {
    if (!aborted && (*should_abort)()) aborted = true;
    return aborted;
  }
  static bool ggml_hook(void* self) { return static_cast<AbortProbe*>(self)->poll(); }
  static bool encoder_hook(whisper_context*, whisper_state*, void* self) {
    return !static_cast<AbortProbe*>(self)->poll();
  }
};

std::string trim(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t\n");
  if (first == std::string::npos) return "";
  const size_t last = text.find_last_not_of(" \t\n");
  return text.substr(first, last - first + 1);
}

constexpr double kCentisecond = 0.01;  // whisper's timestamps are in 10 ms units

// whisper times the last window as if it were 30 s long; no time may pass the audio's end.
double in_audio(double seconds, double duration) {
  return std::min(std::max(seconds, 0.0), duration);
}

}  // namespace

double compression_ratio(const std::string& text) {
  if (text.empty()) return 0.0;
  uLongf size = compressBound(static_cast<uLong>(text.size()));
  std::vector<Bytef> buffer(size);
  if (compress2(buffer.data(), &size, reinterpret_cast<const Bytef*>(text.data()),
                static_cast<uLong>(text.size()), Z_BEST_COMPRESSION) != Z_OK ||
      size == 0) {
    return 0.0;
  }
  return static_cast<double>(text.size()) / static_cast<double>(size);
}

std::vector<TranscriptWord> group_words(const std::vector<TimedToken>& tokens) {
  std::vector<TranscriptWord> words;
  for (const TimedToken& token : tokens) {
    const bool starts_word = words.empty() || (!token.text.empty() && token.text[0] == ' ');
    if (starts_word) {
      words.push_back({token.text, token.start, token.end});
    } else {
      words.back().word += token.text;
      words.back().end = token.end;
    }
  }
  std::vector<TranscriptWord> out;
  for (TranscriptWord& word : words) {
    word.word = trim(word.word);
    if (!word.word.empty()) out.push_back(std::move(word));
  }
  return out;
}

std::unique_ptr<WhisperModel> WhisperModel::load(const std::string& path, std::string* problem) {
  init_whisper_once();
  whisper_context_params params = whisper_context_default_params();
  whisper_context* ctx = whisper_init_from_file_with_params_no_state(path.c_str(), params);
  if (!ctx) {
    *problem = "whisper.cpp could not load " + path;
    return nullptr;
  }
  return std::unique_ptr<WhisperModel>(new WhisperModel(ctx));
}

WhisperModel::~WhisperModel() {
  for (whisper_state* state : idle_states_) whisper_free_state(state);
  whisper_free(ctx_);
}

bool WhisperModel::knows_language(const std::string& code) {
  return whisper_lang_id(code.c_str()) >= 0;
}

bool WhisperModel::multilingual() const {
  return whisper_is_multilingual(ctx_) != 0;
}

whisper_state* WhisperModel::take_state() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!idle_states_.empty()) {
      whisper_state* state = idle_states_.back();
      idle_states_.pop_back();
      return state;
    }
  }
  return whisper_init_state(ctx_);
}

void WhisperModel::give_back_state(whisper_state* state) {
  std::lock_guard<std::mutex> lock(mutex_);
  idle_states_.push_back(state);
}

WhisperRunStatus WhisperModel::transcribe(const std::vector<float>& samples,
                                          const TranscribeOptions& options,
                                          const std::function<bool()>& should_abort,
                                          Transcript* out) {
  whisper_state* state = take_state();
  if (!state) return WhisperRunStatus::FAILED;
  AbortProbe probe{&should_abort};
  whisper_full_params params = whisper_full_default_params(WHISPER_SAMPLING_GREEDY);
  params.n_threads = options.threads;
  params.translate = options.translate;
  params.language = options.language.empty() ? "auto" : options.language.c_str();
  params.initial_prompt = options.prompt.empty() ? nullptr : options.prompt.c_str();
  params.temperature = options.temperature;
  params.temperature_inc = options.temperature_increment;
  params.token_timestamps = options.word_timestamps;
  params.no_context = true;  // a pooled state must not carry text over from an earlier job
  params.print_progress = false;
  params.print_timestamps = false;
  params.print_realtime = false;
  params.print_special = false;
  params.abort_callback = AbortProbe::ggml_hook;
  params.abort_callback_user_data = &probe;
  params.encoder_begin_callback = AbortProbe::encoder_hook;
  params.encoder_begin_callback_user_data = &probe;
  int rc = -1;
  run_on_compute_thread([&] {
    rc = whisper_full_with_state(ctx_, state, params, samples.data(),
                                 static_cast<int>(samples.size()));
  });
  if (rc == 0 && !probe.aborted) {
    out->duration = static_cast<double>(samples.size()) / kWhisperSampleRate;
    collect(state, options, out);
  }
  // An aborted run leaves the state mid-computation; a fresh one is cheaper than doubt.
  if (rc == 0 && !probe.aborted) {
    give_back_state(state);
  } else {
    whisper_free_state(state);
  }
  if (probe.aborted) return WhisperRunStatus::ABORTED;
  return rc == 0 ? WhisperRunStatus::OK : WhisperRunStatus::FAILED;
}

void WhisperModel::collect(whisper_state* state, const TranscribeOptions& options,
                           Transcript* out) const {
  const whisper_token eot = whisper_token_eot(ctx_);
  const int lang = whisper_full_lang_id_from_state(state);
  // A translation's language is its output's, as OpenAI reports it.
  out->language = options.translate ? "english" : lang >= 0 ? whisper_lang_str_full(lang) : "";
  std::string text;
  const int n_segments = whisper_full_n_segments_from_state(state);
  for (int i = 0; i < n_segments; ++i) {
    TranscriptSegment segment;
    segment.id = i;
    const int64_t t0 = whisper_full_get_segment_t0_from_state(state, i);
    segment.start = in_audio(t0 * kCentisecond, out->duration);
    segment.end =
        in_audio(whisper_full_get_segment_t1_from_state(state, i) * kCentisecond, out->duration);
    segment.seek = static_cast<int>(std::lround(segment.start / kCentisecond));
    segment.text = whisper_full_get_segment_text_from_state(state, i);
    segment.temperature = options.temperature;
    segment.no_speech_prob = whisper_full_get_segment_no_speech_prob_from_state(state, i);
    std::vector<TimedToken> timed;
    double logprob_sum = 0.0;
    const int n_tokens = whisper_full_n_tokens_from_state(state, i);
    for (int j = 0; j < n_tokens; ++j) {
      const whisper_token_data data = whisper_full_get_token_data_from_state(state, i, j);
      if (data.id >= eot) continue;  // special and timestamp tokens are not text
      segment.tokens.push_back(data.id);
      logprob_sum += data.plog;
      timed.push_back({whisper_full_get_token_text_from_state(ctx_, state, i, j),
                       in_audio(data.t0 * kCentisecond, out->duration),
                       in_audio(data.t1 * kCentisecond, out->duration)});
    }
    if (!segment.tokens.empty()) segment.avg_logprob = logprob_sum / segment.tokens.size();
    segment.compression_ratio = compression_ratio(segment.text);
    if (options.word_timestamps) {
      for (TranscriptWord& word : group_words(timed)) out->words.push_back(std::move(word));
    }
    text += segment.text;
    out->segments.push_back(std::move(segment));
  }
  out->text = trim(text);
}

}  // namespace allm
