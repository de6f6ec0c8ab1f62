#include "text/text_streamer.h"

#include <gtest/gtest.h>

using namespace allm;

// Feeds pieces one by one, returning everything released.
static std::string feed(TextStreamer& s, const std::vector<std::string>& pieces,
                        bool finish = true) {
  std::string out;
  for (const std::string& piece : pieces) out += s.push(piece);
  if (finish) out += s.finish();
  return out;
}

TEST(TextStreamer, PassesTextThroughWithoutStops) {
  TextStreamer s({});
  EXPECT_EQ(s.push("Hello"), "Hello");
  EXPECT_EQ(s.push(" world"), " world");
  EXPECT_FALSE(s.stopped());
}

TEST(TextStreamer, StopInsideOneToken) {
  TextStreamer s({"END"});
  EXPECT_EQ(feed(s, {"abc", "xENDy", "more"}), "abcx");
  EXPECT_TRUE(s.stopped());
}

TEST(TextStreamer, StopAcrossTokenBoundariesIsNeverSent) {
  TextStreamer s({"STOP"});
  std::vector<std::string> released;
  for (const char* piece : {"ab", "S", "T", "O", "P", "zz"}) released.push_back(s.push(piece));
  EXPECT_EQ(released[0], "ab");
  EXPECT_EQ(released[1], "");  // "S" might begin the stop sequence: held back
  EXPECT_EQ(released[2], "");
  EXPECT_EQ(released[3], "");
  EXPECT_EQ(released[4], "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.finish(), "");
}

TEST(TextStreamer, HeldPrefixIsReleasedWhenItDoesNotContinue) {
  TextStreamer s({"STOP"});
  EXPECT_EQ(s.push("aST"), "a");
  EXPECT_EQ(s.push("x"), "STx");
  EXPECT_FALSE(s.stopped());
}

TEST(TextStreamer, EarliestOfSeveralStopsWins) {
  TextStreamer s({"cd", "b"});
  EXPECT_EQ(feed(s, {"abcd"}), "a");
  EXPECT_EQ(s.matched_stop(), "b");
}

TEST(TextStreamer, OverlappingPrefixes) {
  TextStreamer s({"aab"});
  EXPECT_EQ(feed(s, {"a", "a", "a", "b", "c"}), "a");
}

TEST(TextStreamer, UnfinishedTextIsFlushedAtTheEnd) {
  TextStreamer s({"STOP"});
  EXPECT_EQ(s.push("xSTO"), "x");
  EXPECT_EQ(s.finish(), "STO");
}

TEST(TextStreamer, NeverSplitsAUtf8Character) {
  const std::string euro = "\xE2\x82\xAC";  // €
  TextStreamer s({});
  EXPECT_EQ(s.push("a\xE2"), "a");
  EXPECT_EQ(s.push("\x82"), "");
  EXPECT_EQ(s.push("\xAC!"), euro + "!");
}

TEST(TextStreamer, Utf8AndStopTogether) {
  const std::string snow = "\xE2\x98\x83";  // ☃
  TextStreamer s({snow + "X"});
  EXPECT_EQ(feed(s, {"hi", "\xE2", "\x98", "\x83", "X", "tail"}), "hi");
  TextStreamer t({snow + "X"});
  EXPECT_EQ(feed(t, {"hi", "\xE2", "\x98", "\x83", "Y"}), "hi" + snow + "Y");
}

TEST(TextStreamer, InvalidBytesBecomeReplacementCharacters) {
  TextStreamer s({});
  EXPECT_EQ(feed(s, {"a\x80", "b"}),
            "a\xEF\xBF\xBD"
            "b");
  TextStreamer t({});
  EXPECT_EQ(feed(t, {"\xE2\x82"}), "\xEF\xBF\xBD");  // truncated at the end
}
