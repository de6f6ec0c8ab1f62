// JSON Schema → grammar for structured outputs: each supported keyword shapes what the grammar
// accepts; anything else is a 400 naming the keyword's path in the request.
#include "text/json_schema.h"

#include <gtest/gtest.h>

#include "text/grammar.h"

namespace allm {
namespace {

using json = nlohmann::ordered_json;
const std::string kParam = "text.format.schema";

// A vocabulary of the 256 single bytes plus the end of generation.
std::shared_ptr<TokenTable> byte_vocab() {
  auto table = std::make_shared<TokenTable>();
  for (int b = 0; b < 256; ++b) {
    table->bytes.push_back(std::string(1, static_cast<char>(b)));
    table->end_of_generation.push_back(false);
  }
  table->bytes.push_back("");
  table->end_of_generation.push_back(true);
  return table;
}

bool grammar_accepts(const std::string& gbnf, const std::string& text) {
  Error error;
  auto grammar = TokenGrammar::create({gbnf}, byte_vocab(), &error);
  EXPECT_TRUE(grammar) << error.message;
  if (!grammar) return false;
  for (unsigned char c : text) {
    std::string problem;
    if (!grammar->allows(c) || !grammar->accept(c, &problem)) return false;
  }
  return grammar->can_end();
}

std::string grammar_of(const char* schema) {
  std::string gbnf;
  const Error error = json_schema_grammar(json::parse(schema), kParam, &gbnf);
  EXPECT_FALSE(error) << error.message << " (" << error.param << ")";
  return gbnf;
}

struct Case {
  const char* schema;
  std::vector<const char*> valid;
  std::vector<const char*> invalid;
};

void expect_case(const Case& c) {
  const std::string gbnf = grammar_of(c.schema);
  for (const char* text : c.valid) {
    EXPECT_TRUE(grammar_accepts(gbnf, text)) << c.schema << " should accept " << text;
  }
  for (const char* text : c.invalid) {
    EXPECT_FALSE(grammar_accepts(gbnf, text)) << c.schema << " should refuse " << text;
  }
}

TEST(JsonSchemaGrammar, TypesPropertiesRequired) {
  expect_case({R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},
                  "ok":{"type":"boolean"},"score":{"type":"number"},"none":{"type":"null"}},
                  "required":["name","age"],"title":"Person","description":"d","default":{},
                  "examples":[],"$schema":"https://json-schema.org/draft/2020-12/schema",
                  "$id":"x","$comment":"c"})",
               {R"({"name":"a","age":3})", R"({"name":"a","age":-3,"ok":true,"score":1.5})",
                R"({"name":"a","age":3,"none":null})"},
               {R"({"name":"a"})", R"({"age":3})", R"({"name":1,"age":3})",
                R"({"name":"a","age":3.5})", R"({"name":"a","age":3,"other":1})", "[]"}});
}

TEST(JsonSchemaGrammar, AdditionalProperties) {
  expect_case({R"({"type":"object","properties":{"a":{"type":"integer"}},
                  "additionalProperties":false})",
               {R"({"a":1})", "{}"},
               {R"({"a":1,"b":2})"}});
  expect_case({R"({"type":"object","additionalProperties":{"type":"integer"}})",
               {R"({"x":1,"y":2})", "{}"},
               {R"({"x":"s"})"}});
}

TEST(JsonSchemaGrammar, EnumConstAnyOfOneOf) {
  expect_case({R"({"enum":["red","green",3]})", {R"("red")", "3"}, {R"("blue")", "4"}});
  expect_case({R"({"type":"string","const":"fixed"})", {R"("fixed")"}, {R"("other")"}});
  expect_case(
      {R"({"anyOf":[{"type":"integer"},{"type":"null"}]})", {"1", "null"}, {R"("a")", "true"}});
  expect_case({R"({"oneOf":[{"type":"boolean"},{"type":"string","maxLength":1}]})",
               {"true", R"("a")"},
               {R"("ab")", "1"}});
  expect_case({R"({"type":["string","null"]})", {R"("a")", "null"}, {"1"}});
}

TEST(JsonSchemaGrammar, ArraysAndCounts) {
  expect_case({R"({"type":"array","items":{"type":"integer"},"minItems":1,"maxItems":2})",
               {"[1]", "[1,2]"},
               {"[]", "[1,2,3]", R"(["a"])"}});
  expect_case({R"({"type":"string","minLength":2,"maxLength":3})",
               {R"("ab")", R"("abc")"},
               {R"("a")", R"("abcd")"}});
}

TEST(JsonSchemaGrammar, IntegerBoundsAndPattern) {
  expect_case(
      {R"({"type":"integer","minimum":1,"maximum":10})", {"1", "5", "10"}, {"0", "11", "-1"}});
  expect_case({R"({"type":"string","pattern":"^[a-z]+-[0-9]{2}$"})",
               {R"("ab-12")"},
               {R"("ab-1")", R"("AB-12")"}});
}

TEST(JsonSchemaGrammar, RefsDefsAndNesting) {
  expect_case(
      {R"({"$defs":{"point":{"type":"object","properties":{"x":{"type":"integer"}},
                   "required":["x"],"additionalProperties":false}},
                  "type":"object","properties":{"points":{"type":"array",
                  "items":{"$ref":"#/$defs/point"}},"meta":{"type":"object",
                  "properties":{"tags":{"type":"array","items":{"type":"string"}}},
                  "required":["tags"]}},"required":["points","meta"]})",
       {R"({"points":[{"x":1}],"meta":{"tags":["a"]}})", R"({"points":[],"meta":{"tags":[]}})"},
       {R"({"points":[{"y":1}],"meta":{"tags":[]}})", R"({"points":[{"x":1}],"meta":{}})"}});
  // A recursive definition.
  expect_case({R"({"$defs":{"node":{"type":"object","properties":{"kids":{"type":"array",
                   "items":{"$ref":"#/$defs/node"}}},"required":["kids"]}},
                  "$ref":"#/$defs/node"})",
               {R"({"kids":[{"kids":[]}]})"},
               {R"({"kids":[{}]})"}});
}

TEST(JsonSchemaGrammar, JsonObjectGrammarAcceptsAnyObjectOnly) {
  const std::string gbnf = json_object_grammar();
  EXPECT_TRUE(grammar_accepts(gbnf, R"({"a":[1,{"b":null}],"c":"d"})"));
  EXPECT_TRUE(grammar_accepts(gbnf, "{}"));
  EXPECT_FALSE(grammar_accepts(gbnf, "[1]"));
  EXPECT_FALSE(grammar_accepts(gbnf, R"("text")"));
}

std::string* scratch_gbnf() {
  static std::string gbnf;
  return &gbnf;
}

// The param of the error for `schema`.
std::string refused_at(const char* schema) {
  std::string gbnf;
  const Error error = json_schema_grammar(json::parse(schema), kParam, &gbnf);
  EXPECT_TRUE(error) << schema << " was accepted";
  EXPECT_EQ(error.request_code, "invalid_value");
  return error.param;
}

TEST(JsonSchemaGrammar, UnsupportedKeywordsAreRefusedWithTheirPath) {
  EXPECT_EQ(refused_at(R"({"type":"object","properties":{"age":{"type":"integer",
                          "multipleOf":2}}})"),
            kParam + ".properties.age.multipleOf");
  EXPECT_EQ(refused_at(R"({"type":"string","format":"email"})"), kParam + ".format");
  EXPECT_EQ(refused_at(R"({"type":"array","prefixItems":[{"type":"string"}]})"),
            kParam + ".prefixItems");
  EXPECT_EQ(refused_at(R"({"allOf":[{"type":"string"}]})"), kParam + ".allOf");
  EXPECT_EQ(refused_at(R"({"anyOf":[{"type":"integer","exclusiveMinimum":0}]})"),
            kParam + ".anyOf[0].exclusiveMinimum");
  EXPECT_EQ(refused_at(R"({"type":"object","additionalProperties":{"not":{}}})"),
            kParam + ".additionalProperties.not");
  EXPECT_EQ(refused_at(R"({"$defs":{"a":{"type":"string","uniqueItems":true}},
                          "$ref":"#/$defs/a"})"),
            kParam + ".$defs.a.uniqueItems");
}

TEST(JsonSchemaGrammar, KeywordsTheConverterWouldIgnoreAreRefused) {
  // minimum on a number, a pattern it cannot enforce, keywords beside $ref or anyOf.
  EXPECT_EQ(refused_at(R"({"type":"number","minimum":0})"), kParam + ".minimum");
  EXPECT_EQ(refused_at(R"({"minimum":0})"), kParam + ".minimum");
  EXPECT_EQ(refused_at(R"({"type":"string","pattern":"[a-z]+"})"), kParam + ".pattern");
  EXPECT_EQ(refused_at(R"({"type":"string","pattern":"^(?=a)b$"})"), kParam + ".pattern");
  EXPECT_EQ(refused_at(R"({"type":"string","pattern":"^a+$","maxLength":3})"), kParam + ".pattern");
  EXPECT_EQ(refused_at(R"({"$defs":{"a":{}},"$ref":"#/$defs/a","type":"object"})"),
            kParam + ".$ref");
  EXPECT_EQ(refused_at(R"({"anyOf":[{}],"properties":{}})"), kParam + ".properties");
  EXPECT_EQ(refused_at(R"({"enum":[1],"const":1})"), kParam + ".enum");
  EXPECT_EQ(refused_at(R"({"type":"string","enum":["a",1]})"), kParam + ".enum");
  EXPECT_EQ(refused_at(R"({"type":"string","minItems":1})"), kParam + ".minItems");
  EXPECT_EQ(refused_at(R"({"properties":{},"items":{}})"), kParam + ".properties");
  EXPECT_EQ(refused_at(R"({"type":"object","properties":{"a":{}},"required":["b"]})"),
            kParam + ".required[0]");
}

TEST(JsonSchemaGrammar, MalformedValuesAreRefusedWithTheirPath) {
  EXPECT_EQ(refused_at(R"(true)"), kParam);
  EXPECT_EQ(refused_at(R"({"type":"date"})"), kParam + ".type");
  EXPECT_EQ(refused_at(R"({"type":"object","properties":{"a":5}})"), kParam + ".properties.a");
  EXPECT_EQ(refused_at(R"({"type":"array","items":[{}]})"), kParam + ".items");
  EXPECT_EQ(refused_at(R"({"type":"array","minItems":3,"maxItems":2})"), kParam + ".minItems");
  EXPECT_EQ(refused_at(R"({"type":"string","maxLength":2001})"), kParam + ".maxLength");
  EXPECT_EQ(refused_at(R"({"type":"integer","minimum":1e300})"), kParam + ".minimum");
  // Within each count's limit, but the grammar engine's repetitions multiply past its own.
  EXPECT_FALSE(json_schema_grammar(json::parse(R"({"type":"string","maxLength":2000})"), kParam,
                                   scratch_gbnf()));
  EXPECT_EQ(refused_at(R"({"type":"array","maxItems":2000,"items":{"type":"object",
                          "properties":{"a":{"type":"string","maxLength":2000}}}})"),
            kParam);
  EXPECT_EQ(refused_at(R"({"type":"integer","minimum":5,"maximum":1})"), kParam + ".minimum");
  EXPECT_EQ(refused_at(R"({"$ref":"#/definitions/a"})"), kParam + ".$ref");
  EXPECT_EQ(refused_at(R"({"$ref":"#/$defs/missing"})"), kParam + ".$ref");
  EXPECT_EQ(refused_at(R"({"type":"object","properties":{"a":{"$defs":{}}}})"),
            kParam + ".properties.a.$defs");
  EXPECT_EQ(refused_at(R"({"$defs":{"a":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})"), kParam);
  EXPECT_EQ(refused_at(R"({"anyOf":[]})"), kParam + ".anyOf");
  EXPECT_EQ(refused_at(R"({"enum":[]})"), kParam + ".enum");
  EXPECT_EQ(refused_at(R"({"type":"object","additionalProperties":1})"),
            kParam + ".additionalProperties");
}

}  // namespace
}  // namespace allm
