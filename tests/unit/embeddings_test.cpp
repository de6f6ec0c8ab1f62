// Pooling and the vector arithmetic of /v1/embeddings on hand-computable cases, and the request
// parser's answers to bad bodies.
#include "text/embeddings.h"

#include <gtest/gtest.h>

#include "api/request_parsing.h"

namespace allm {
namespace {

std::vector<float> pool(Pooling pooling, const std::vector<std::vector<float>>& states) {
  PooledVector pooled(pooling, static_cast<int>(states.front().size()));
  const int length = static_cast<int>(states.size());
  for (int pos = 0; pos < length; ++pos) {
    if (PooledVector::reads(pooling, pos, length)) pooled.add(states[pos].data());
  }
  return pooled.result();
}

const std::vector<std::vector<float>> kStates = {{1, 2, 3}, {3, 4, 5}, {5, 6, 10}};

TEST(Embeddings, MeanPoolingAveragesEveryToken) {
  EXPECT_EQ(pool(Pooling::MEAN, kStates), (std::vector<float>{3, 4, 6}));
}

TEST(Embeddings, ClsAndLastPoolingTakeOneToken) {
  EXPECT_EQ(pool(Pooling::CLS, kStates), kStates.front());
  EXPECT_EQ(pool(Pooling::LAST, kStates), kStates.back());
  EXPECT_EQ(pool(Pooling::LAST, {{7, 8, 9}}), (std::vector<float>{7, 8, 9}));
}

TEST(Embeddings, NormalisingScalesToLengthOne) {
  std::vector<float> v = {3, 4};
  l2_normalize(&v);
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(v[1], 0.8f);
  std::vector<float> zero = {0, 0};
  l2_normalize(&zero);
  EXPECT_EQ(zero, (std::vector<float>{0, 0}));
}

TEST(Embeddings, TruncatingKeepsThePrefixNormalised) {
  std::vector<float> v = {3.0f / 13, 4.0f / 13, 12.0f / 13};
  truncate_normalized(&v, 2);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(v[1], 0.8f);
}

// The parameter a bad body is refused for (400), "" when it is accepted.
std::string refused_param(const char* body) {
  const Error error = check_embeddings_request(json::parse(body));
  if (!error) return "";
  EXPECT_EQ(http_status(error), 400) << body;
  return error.param;
}

TEST(Embeddings, RequestParserAcceptsEveryInputShape) {
  EXPECT_EQ(refused_param(R"({"model":"m","input":"a"})"), "");
  EXPECT_EQ(refused_param(R"({"model":"m","input":["a","b"]})"), "");
  EXPECT_EQ(refused_param(R"({"model":"m","input":[1,2,3]})"), "");
  EXPECT_EQ(refused_param(R"({"model":"m","input":[[1,2],[3]],"encoding_format":"base64",
                             "dimensions":8,"user":"u"})"),
            "");
}

TEST(Embeddings, RequestParserRefusesBadBodiesNamingTheField) {
  EXPECT_EQ(refused_param(R"({"input":"a"})"), "model");
  EXPECT_EQ(refused_param(R"({"model":"m"})"), "input");
  EXPECT_EQ(refused_param(R"({"model":"m","input":""})"), "input");
  EXPECT_EQ(refused_param(R"({"model":"m","input":[]})"), "input");
  EXPECT_EQ(refused_param(R"({"model":"m","input":["a",""]})"), "input[1]");
  EXPECT_EQ(refused_param(R"({"model":"m","input":["a",[1]]})"), "input[1]");
  EXPECT_EQ(refused_param(R"({"model":"m","input":[[1],[]]})"), "input[1]");
  EXPECT_EQ(refused_param(R"({"model":"m","input":[1,2.5]})"), "input");
  EXPECT_EQ(refused_param(R"({"model":"m","input":[1,-2]})"), "input");
  EXPECT_EQ(refused_param(R"({"model":"m","input":{"a":1}})"), "input");
  EXPECT_EQ(refused_param(R"({"model":"m","input":"a","encoding_format":"int8"})"),
            "encoding_format");
  EXPECT_EQ(refused_param(R"({"model":"m","input":"a","dimensions":0})"), "dimensions");
  EXPECT_EQ(refused_param(R"({"model":"m","input":"a","dimensions":"8"})"), "dimensions");
  EXPECT_EQ(refused_param(R"({"model":"m","input":"a","user":5})"), "user");
  EXPECT_EQ(refused_param(R"({"model":"m","input":"a","temperature":1})"), "temperature");
}

}  // namespace
}  // namespace allm
