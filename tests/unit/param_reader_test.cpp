#include <gtest/gtest.h>

#include "api/http_util.h"

using namespace allm;

TEST(ParamReader, ReadsValidValues) {
  const json body = json::parse(R"({"model":"m","temperature":0.5,"max":7,"stream":true})");
  ParamReader p(body);
  EXPECT_EQ(p.string("model", true), "m");
  EXPECT_EQ(p.number("temperature", 0, 2), 0.5);
  EXPECT_EQ(p.integer("max", 1, 10), 7);
  EXPECT_EQ(p.boolean("stream"), true);
  EXPECT_FALSE(p.number("absent", 0, 1).has_value());
  EXPECT_TRUE(p.error.ok());
}

TEST(ParamReader, NamesTheFirstBadParameter) {
  const json body = json::parse(R"({"temperature":"hot","top_p":3})");
  ParamReader p(body);
  p.number("temperature", 0, 2);
  p.number("top_p", 0, 1);
  EXPECT_EQ(p.error.param, "temperature");
  EXPECT_EQ(http_status(p.error), 400);
  EXPECT_NE(p.error.message.find("number"), std::string::npos);
}

TEST(ParamReader, RangeAndTypeProblems) {
  const json body = json::parse(R"({"n":2.5,"k":-1,"b":1,"s":5})");
  {
    ParamReader p(body);
    p.integer("n", 0, 10);
    EXPECT_EQ(p.error.param, "n");
  }
  {
    ParamReader p(body);
    p.integer("k", 0, 10);
    EXPECT_EQ(p.error.param, "k");
    EXPECT_NE(p.error.message.find("between"), std::string::npos);
  }
  {
    ParamReader p(body);
    p.boolean("b");
    EXPECT_EQ(p.error.param, "b");
  }
  {
    ParamReader p(body);
    p.string("s");
    EXPECT_EQ(p.error.param, "s");
  }
  {
    ParamReader p(body);
    p.string("model", true);
    EXPECT_EQ(p.error.param, "model");
    EXPECT_NE(p.error.message.find("missing"), std::string::npos);
  }
}

TEST(ParamReader, IntegersPastTheSigned64BitRangeAreOutOfRange) {
  const json body = json::parse(R"({"big":9223372036854775808,"max":9223372036854775807})");
  ParamReader p(body);
  EXPECT_EQ(p.integer("max", INT64_MIN, INT64_MAX), INT64_MAX);
  EXPECT_TRUE(p.error.ok());
  EXPECT_FALSE(p.integer("big", INT64_MIN, INT64_MAX).has_value());
  EXPECT_EQ(p.error.param, "big");
  EXPECT_NE(p.error.message.find("9223372036854775808"), std::string::npos) << p.error.message;
}
