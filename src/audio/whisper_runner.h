// What the AudioManager drives: one loaded whisper model (whisper.cpp context, shared by every
// job) plus a pool of whisper states, so each running job decodes in a state of its own.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

struct whisper_context;
struct whisper_state;

namespace allm {

// whisper's own step between fallback temperatures (whisper_full_default_params).
constexpr float kWhisperTemperatureIncrement = 0.2f;

struct TranscribeOptions {
  bool translate = false;  // whisper's translate task: speech in any language to English text
  std::string language;    // ISO-639-1; empty: detected
  std::string prompt;
  float temperature = 0.0f;  // the first temperature; whisper falls back to higher ones
  float temperature_increment = kWhisperTemperatureIncrement;  // 0: no fallback
  bool word_timestamps = false;
  int threads = 1;
};

struct TranscriptWord {
  std::string word;
  double start = 0.0, end = 0.0;  // seconds
};

struct TranscriptSegment {
  int id = 0;
  int seek = 0;  // start of the segment in 10 ms mel frames, as OpenAI reports it
  double start = 0.0, end = 0.0;
  std::string text;
  std::vector<int> tokens;
  float temperature = 0.0f;
  double avg_logprob = 0.0;
  double compression_ratio = 0.0;
  double no_speech_prob = 0.0;
};

struct Transcript {
  std::string language;  // whisper's full name ("english"), as OpenAI's verbose_json has it
  double duration = 0.0;
  std::string text;
  std::vector<TranscriptSegment> segments;
  std::vector<TranscriptWord> words;  // filled when word timestamps were asked for
};

enum class WhisperRunStatus { OK, ABORTED, FAILED };

class WhisperModel {
 public:
  // nullptr with `problem` set when whisper.cpp cannot load the file.
  static std::unique_ptr<WhisperModel> load(const std::string& path, std::string* problem);
  ~WhisperModel();
  WhisperModel(const WhisperModel&) = delete;
  WhisperModel& operator=(const WhisperModel&) = delete;

  static bool knows_language(const std::string& code);
  bool multilingual() const;

  // Runs whisper over 16 kHz mono `samples`. `should_abort` is polled while it computes; when
  // it says yes the run stops with ABORTED.
  WhisperRunStatus transcribe(const std::vector<float>& samples, const TranscribeOptions& options,
                              const std::function<bool()>& should_abort, Transcript* out);

 private:
  explicit WhisperModel(whisper_context* ctx) : ctx_(ctx) {}
  whisper_state* take_state();
  void give_back_state(whisper_state* state);
  void collect(whisper_state* state, const TranscribeOptions& options, Transcript* out) const;

  whisper_context* ctx_;
  std::mutex mutex_;
  std::vector<whisper_state*> idle_states_;  // kept for reuse: creating one allocates buffers
};

// gzip-style compression ratio of the text (len / compressed len), as OpenAI reports it: high
// values flag repetitive output.
double compression_ratio(const std::string& text);

// Splits a segment's tokens into words at leading spaces; times in seconds.
struct TimedToken {
  std::string text;
  double start = 0.0, end = 0.0;
};
std::vector<TranscriptWord> group_words(const std::vector<TimedToken>& tokens);

}  // namespace allm
