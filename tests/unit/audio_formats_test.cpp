// Transcript serialisation (SRT, WebVTT, verbose_json) and the transcript helpers.
#include "api/audio_formats.h"

#include <gtest/gtest.h>

#include "audio/whisper_runner.h"

namespace allm {
namespace {

Transcript two_segments() {
  Transcript t;
  t.language = "english";
  t.duration = 3661.5;
  t.text = "Hello there. General Kenobi.";
  TranscriptSegment a;
  a.id = 0;
  a.start = 0.0;
  a.end = 2.5;
  a.text = " Hello there.";
  a.tokens = {1, 2, 3};
  TranscriptSegment b;
  b.id = 1;
  b.seek = 250;
  b.start = 2.5;
  b.end = 3661.5;
  b.text = " General Kenobi.";
  t.segments = {a, b};
  t.words = {{"Hello", 0.0, 0.4}, {"there.", 0.4, 1.0}};
  return t;
}

TEST(SubtitleTimestamp, FormatsHoursMinutesSecondsMillis) {
  EXPECT_EQ(subtitle_timestamp(0.0, ','), "00:00:00,000");
  EXPECT_EQ(subtitle_timestamp(3661.5, ','), "01:01:01,500");
  EXPECT_EQ(subtitle_timestamp(3661.5, '.'), "01:01:01.500");
  EXPECT_EQ(subtitle_timestamp(59.9996, ','), "00:01:00,000");  // rounds to the millisecond
  EXPECT_EQ(subtitle_timestamp(-1.0, ','), "00:00:00,000");
  EXPECT_EQ(subtitle_timestamp(100 * 3600.0 + 0.001, '.'), "100:00:00.001");
}

TEST(Srt, NumbersCuesFromOne) {
  EXPECT_EQ(to_srt(two_segments()),
            "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n"
            "2\n00:00:02,500 --> 01:01:01,500\nGeneral Kenobi.\n\n");
}

TEST(Vtt, StartsWithTheHeader) {
  EXPECT_EQ(to_vtt(two_segments()),
            "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n\n"
            "00:00:02.500 --> 01:01:01.500\nGeneral Kenobi.\n\n");
  EXPECT_EQ(to_vtt(Transcript{}), "WEBVTT\n\n");
}

TEST(VerboseJson, CarriesOpenAIsFields) {
  const Transcript t = two_segments();
  const auto body = to_verbose_json(TranscriptView{t, "transcribe", true, false});
  EXPECT_EQ(body["task"], "transcribe");
  EXPECT_EQ(body["language"], "english");
  EXPECT_DOUBLE_EQ(body["duration"].get<double>(), 3661.5);
  EXPECT_EQ(body["text"], t.text);
  ASSERT_EQ(body["segments"].size(), 2u);
  for (const char* key : {"id", "seek", "start", "end", "text", "tokens", "temperature",
                          "avg_logprob", "compression_ratio", "no_speech_prob"}) {
    EXPECT_TRUE(body["segments"][1].contains(key)) << key;
  }
  EXPECT_EQ(body["segments"][1]["seek"], 250);
  EXPECT_FALSE(body.contains("words"));

  const auto words_only = to_verbose_json(TranscriptView{t, "translate", false, true});
  EXPECT_EQ(words_only["task"], "translate");
  EXPECT_FALSE(words_only.contains("segments"));
  ASSERT_EQ(words_only["words"].size(), 2u);
  EXPECT_EQ(words_only["words"][1]["word"], "there.");
  EXPECT_DOUBLE_EQ(words_only["words"][1]["end"].get<double>(), 1.0);
}

TEST(FormatTranscript, PicksBodyAndContentType) {
  const Transcript t = two_segments();
  const TranscriptView view{t, "transcribe", true, false};
  EXPECT_EQ(format_transcript(view, TranscriptFormat::JSON).body,
            "{\"text\":\"Hello there. General Kenobi.\"}");
  EXPECT_EQ(format_transcript(view, TranscriptFormat::JSON).content_type, "application/json");
  EXPECT_EQ(format_transcript(view, TranscriptFormat::TEXT).body, t.text + "\n");
  EXPECT_NE(format_transcript(view, TranscriptFormat::SRT).content_type.find("text/plain"),
            std::string::npos);
  EXPECT_EQ(*parse_transcript_format("verbose_json"), TranscriptFormat::VERBOSE_JSON);
  EXPECT_FALSE(parse_transcript_format("xml"));
}

TEST(GroupWords, SplitsAtLeadingSpaces) {
  const auto words = group_words({{" he", 0.0, 0.1},
                                  {"llo", 0.1, 0.3},
                                  {" world", 0.3, 0.6},
                                  {".", 0.6, 0.7},
                                  {" ", 0.7, 0.8}});
  ASSERT_EQ(words.size(), 2u);
  EXPECT_EQ(words[0].word, "hello");
  EXPECT_DOUBLE_EQ(words[0].start, 0.0);
  EXPECT_DOUBLE_EQ(words[0].end, 0.3);
  EXPECT_EQ(words[1].word, "world.");
  EXPECT_DOUBLE_EQ(words[1].end, 0.7);
}

TEST(CompressionRatio, FlagsRepetition) {
  EXPECT_EQ(compression_ratio(""), 0.0);
  std::string repeated;
  for (int i = 0; i < 50; ++i) repeated += " an";
  EXPECT_GT(compression_ratio(repeated), 2.4);  // whisper's repetition threshold
  EXPECT_LT(compression_ratio("The quick brown fox jumps over the lazy dog."), 2.0);
}

}  // namespace
}  // namespace allm
