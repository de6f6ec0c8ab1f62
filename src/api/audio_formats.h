// Serialises a transcript in each of OpenAI's audio response formats.
#pragma once

#include <optional>
#include <string>

#include "audio/whisper_runner.h"
#include "nlohmann/json.hpp"

namespace allm {

enum class TranscriptFormat { JSON, TEXT, SRT, VTT, VERBOSE_JSON };

std::optional<TranscriptFormat> parse_transcript_format(const std::string& name);

struct TranscriptView {
  const Transcript& transcript;
  const char* task;  // "transcribe" | "translate"
  bool segments = true;
  bool words = false;
};

// "HH:MM:SS,mmm" (SRT) or "HH:MM:SS.mmm" (WebVTT).
std::string subtitle_timestamp(double seconds, char millis_separator);

std::string to_srt(const Transcript& transcript);
std::string to_vtt(const Transcript& transcript);
nlohmann::ordered_json to_verbose_json(const TranscriptView& view);

// The body and its content type for `format`.
struct FormattedTranscript {
  std::string body;
  std::string content_type;
};
FormattedTranscript format_transcript(const TranscriptView& view, TranscriptFormat format);

}  // namespace allm
