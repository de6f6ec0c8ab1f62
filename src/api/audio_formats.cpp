#include "api/audio_formats.h"

#include <cmath>
#include <cstdio>

namespace allm {

using json = nlohmann::ordered_json;

namespace {

constexpr const char* kJsonType = "application/json";
constexpr const char* kTextType = "text/plain; charset=utf-8";

std::string trim(const std::string& text) {
  const size_t first = text.find_first_not_of(" \t\n");
  if (first == std::string::npos) return "";
  return text.substr(first, text.find_last_not_of(" \t\n") - first + 1);
}

// Cue blocks shared by SRT and WebVTT: optional number, time range, text, blank line.
std::string subtitle_cues(const Transcript& transcript, bool numbered, char separator) {
  std::string out;
  int number = 1;
  for (const TranscriptSegment& segment : transcript.segments) {
    if (numbered) out += std::to_string(number++) + "\n";
    out += subtitle_timestamp(segment.start, separator) + " --> " +
           subtitle_timestamp(segment.end, separator) + "\n" + trim(segment.text) + "\n\n";
  }
  return out;
}

// Seconds rounded to milliseconds keep the JSON short and stable.
double round_ms(double seconds) {
  return std::round(seconds * 1000.0) / 1000.0;
}

json segment_json(const TranscriptSegment& segment) {
  return json{{"id", segment.id},
              {"seek", segment.seek},
              {"start", round_ms(segment.start)},
              {"end", round_ms(segment.end)},
              {"text", segment.text},
              {"tokens", segment.tokens},
              {"temperature", segment.temperature},
              {"avg_logprob", segment.avg_logprob},
              {"compression_ratio", segment.compression_ratio},
              {"no_speech_prob", segment.no_speech_prob}};
}

}  // namespace

std::optional<TranscriptFormat> parse_transcript_format(const std::string& name) {
  if (name == "json") return TranscriptFormat::JSON;
  if (name == "text") return TranscriptFormat::TEXT;
  if (name == "srt") return TranscriptFormat::SRT;
  if (name == "vtt") return TranscriptFormat::VTT;
  if (name == "verbose_json") return TranscriptFormat::VERBOSE_JSON;
  return std::nullopt;
}

std::string subtitle_timestamp(double seconds, char millis_separator) {
  const long long total_ms = std::llround(std::max(0.0, seconds) * 1000.0);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02lld:%02lld:%02lld%c%03lld", total_ms / 3600000,
                total_ms / 60000 % 60, total_ms / 1000 % 60, millis_separator, total_ms % 1000);
  return buf;
}

std::string to_srt(const Transcript& transcript) {
  return subtitle_cues(transcript, true, ',');
}

std::string to_vtt(const Transcript& transcript) {
  return "WEBVTT\n\n" + subtitle_cues(transcript, false, '.');
}

json to_verbose_json(const TranscriptView& view) {
  const Transcript& t = view.transcript;
  json body{{"task", view.task},
            {"language", t.language},
            {"duration", round_ms(t.duration)},
            {"text", t.text}};
  if (view.segments) {
    json segments = json::array();
    for (const TranscriptSegment& segment : t.segments) segments.push_back(segment_json(segment));
    body["segments"] = segments;
  }
  if (view.words) {
    json words = json::array();
    for (const TranscriptWord& word : t.words) {
      words.push_back(
          json{{"word", word.word}, {"start", round_ms(word.start)}, {"end", round_ms(word.end)}});
    }
    body["words"] = words;
  }
  return body;
}

FormattedTranscript format_transcript(const TranscriptView& view, TranscriptFormat format) {
  const auto dump = [](const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
  };
  switch (format) {
    case TranscriptFormat::JSON: return {dump(json{{"text", view.transcript.text}}), kJsonType};
    case TranscriptFormat::TEXT: return {view.transcript.text + "\n", kTextType};
    case TranscriptFormat::SRT: return {to_srt(view.transcript), kTextType};
    case TranscriptFormat::VTT: return {to_vtt(view.transcript), kTextType};
    case TranscriptFormat::VERBOSE_JSON: return {dump(to_verbose_json(view)), kJsonType};
  }
  return {};
}

}  // namespace allm
