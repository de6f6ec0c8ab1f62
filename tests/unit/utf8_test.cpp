#include "text/utf8.h"

#include <gtest/gtest.h>

using namespace allm;

TEST(Utf8, IncompleteTail) {
  EXPECT_EQ(incomplete_utf8_tail("abc"), 0u);
  EXPECT_EQ(incomplete_utf8_tail("a\xC3"), 1u);
  EXPECT_EQ(incomplete_utf8_tail("a\xE2\x82"), 2u);
  EXPECT_EQ(incomplete_utf8_tail("\xF0\x9F\x98"), 3u);
  EXPECT_EQ(incomplete_utf8_tail("\xF0\x9F\x98\x80"), 0u);  // complete 😀
  EXPECT_EQ(incomplete_utf8_tail("a\x80"), 0u);             // invalid, not incomplete
  EXPECT_EQ(incomplete_utf8_tail("\xE0\x80"), 0u);          // overlong start, invalid
  EXPECT_EQ(incomplete_utf8_tail("a\xFF"), 0u);             // a byte that never starts one
  EXPECT_EQ(incomplete_utf8_tail("\xF4\x90"), 0u);          // past U+10FFFF, invalid
}

TEST(Utf8, SanitizeKeepsValidText) {
  const std::string text = "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80";
  EXPECT_EQ(sanitize_utf8(text), text);
}

TEST(Utf8, SanitizeReplacesInvalidSequences) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(sanitize_utf8("a\xFF"
                          "b"),
            "a" + fffd + "b");
  EXPECT_EQ(sanitize_utf8("\xE2\x82"
                          "b"),
            fffd + "b");                                         // maximal subpart → one U+FFFD
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), fffd + fffd + fffd);  // surrogate
  EXPECT_EQ(sanitize_utf8("\xC0\xAF"), fffd + fffd);             // overlong
}

TEST(Utf8, PrefixAllowsOnlyAValidUnfinishedLastCharacter) {
  EXPECT_TRUE(is_utf8_prefix(""));
  EXPECT_TRUE(is_utf8_prefix("a\xC3\xA9"));
  EXPECT_TRUE(is_utf8_prefix("a\xE2\x82"));
  EXPECT_TRUE(is_utf8_prefix("\xED\x9F"));
  EXPECT_FALSE(is_utf8_prefix("\xED\xA0"));  // a surrogate
  EXPECT_FALSE(is_utf8_prefix("\xF4\x90"));  // above U+10FFFF
  EXPECT_FALSE(is_utf8_prefix("\xE0\x80"));  // overlong
  EXPECT_FALSE(
      is_utf8_prefix("\xC3"
                     "a"));  // unfinished before another character
  EXPECT_FALSE(is_utf8_prefix("a\x80"));
}
