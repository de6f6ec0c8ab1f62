// Constrained decoding on a small vocabulary of our own (not a llama.cpp one): the grammar
// accepts and refuses texts, the sampler's output follows it whatever the logits, the end of
// generation comes only where the grammar may end, and lazy grammars wait for their trigger.
#include "text/grammar.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "grammar_vocab.h"
#include "text/sampler.h"

namespace allm {
namespace {

TEST(Grammar, AcceptsTheSentencesOfTheGrammarAndRefusesOthers) {
  const std::string gbnf = R"(root ::= "{" pair ("," pair)* "}"
pair ::= [a-z]+ ":" [0-9]+)";
  EXPECT_TRUE(accepts(gbnf, "{a:1}"));
  EXPECT_TRUE(accepts(gbnf, "{ab:12,c:3}"));
  EXPECT_FALSE(accepts(gbnf, "{a:1"));   // cannot end yet
  EXPECT_FALSE(accepts(gbnf, "{A:1}"));  // a character the grammar refuses
  EXPECT_FALSE(accepts(gbnf, "{a:1}}"));
  EXPECT_FALSE(accepts(gbnf, ""));
}

TEST(Grammar, ReadsCharactersSplitAcrossTokens) {
  Vocab vocab;
  auto grammar = make_grammar(vocab, {R"(root ::= "é" "x")"});
  EXPECT_FALSE(grammar->allows(vocab.id("\xA9")));  // a continuation byte cannot start
  ASSERT_TRUE(grammar->allows(vocab.id("\xC3")));   // the first byte of é
  std::string problem;
  ASSERT_TRUE(grammar->accept(vocab.id("\xC3"), &problem)) << problem;
  EXPECT_FALSE(grammar->allows(vocab.id("x")));
  EXPECT_TRUE(grammar->allows(vocab.id("\xA9")));
  ASSERT_TRUE(grammar->accept(vocab.id("\xA9"), &problem)) << problem;
  EXPECT_TRUE(grammar->allows(vocab.id("x")));
}

// llama-grammar's own check of an unfinished character lets surrogates and code points above
// U+10FFFF through; the answer would then carry bytes that are not UTF-8.
TEST(Grammar, RefusesBytesThatCannotBecomeACharacter) {
  Vocab vocab;
  for (const char* lead : {"\xED", "\xF4"}) {
    auto grammar = make_grammar(vocab, {R"(root ::= [^"]+)"});
    std::string problem;
    ASSERT_TRUE(grammar->accept(vocab.id(lead), &problem)) << problem;
    EXPECT_TRUE(grammar->allows(vocab.id("\x80")));
    EXPECT_FALSE(grammar->allows(vocab.id("\xA0")));
    std::vector<float> scores(vocab.table->size(), 0.0f);
    grammar->mask(scores.data());
    EXPECT_TRUE(std::isinf(scores[vocab.id("\xA0")]));
    EXPECT_EQ(scores[vocab.id("\x80")], 0.0f);
  }
}

TEST(Grammar, MaskLeavesExactlyTheTokensTheGrammarAllows) {
  Vocab vocab;
  auto grammar = make_grammar(vocab, {R"(root ::= ("true" | "12") "]]")"});
  std::vector<float> scores(vocab.table->size(), 0.0f);
  const int allowed = grammar->mask(scores.data());
  std::vector<std::string> left;
  for (Token t = 0; t < vocab.table->size(); ++t) {
    if (scores[t] == 0.0f) left.push_back(vocab.table->bytes[t]);
  }
  EXPECT_EQ(left, (std::vector<std::string>{"1", "t", "true", "12"}));
  EXPECT_EQ(allowed, 4);
}

TEST(Grammar, InvalidGrammarIsAnError) {
  Vocab vocab;
  Error error;
  EXPECT_FALSE(TokenGrammar::create({"root ::= ("}, vocab.table, &error));
  EXPECT_EQ(error.code, ErrorCode::INTERNAL);
  EXPECT_FALSE(TokenGrammar::create({R"(other ::= "a")"}, vocab.table, &error));
  GrammarConstraint bad_trigger{R"(root ::= "a")", true};
  bad_trigger.triggers.push_back({GrammarTrigger::Kind::PATTERN, "(unclosed"});
  EXPECT_FALSE(TokenGrammar::create(bad_trigger, vocab.table, &error));
}

// Samples until the grammar is complete or the end of generation comes; the text generated.
std::string generate(const Vocab& vocab, TokenGrammar& grammar, const SamplingParams& params,
                     const std::function<void(std::vector<float>&)>& shape_logits,
                     bool* ended_by_eog) {
  Sampler sampler(params, vocab.table->size());
  std::mt19937 rng(static_cast<uint32_t>(*params.seed));
  std::normal_distribution<float> noise(0.0f, 3.0f);
  std::string text;
  *ended_by_eog = false;
  for (int step = 0; step < 400 && !grammar.complete(); ++step) {
    std::vector<float> logits(vocab.table->size());
    for (float& l : logits) l = noise(rng);
    shape_logits(logits);
    const Token token = sampler.sample(sampler.scores(logits.data()), &grammar);
    EXPECT_NE(token, kNoToken);
    if (vocab.table->end_of_generation[token]) {
      *ended_by_eog = true;
      break;
    }
    std::string problem;
    EXPECT_TRUE(grammar.accept(token, &problem)) << problem;
    text += vocab.table->bytes[token];
  }
  return text;
}

TEST(ConstrainedSampler, OutputFollowsTheGrammarWhateverTheLogits) {
  const std::string gbnf =
      R"(root ::= "{\"" [a-z]{1,4} "\":" ("true" | "false" | "null" | [0-9]{1,3}) "}")";
  Vocab vocab;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    SamplingParams params;
    params.temperature = 1.0f + static_cast<float>(seed % 4) * 0.5f;
    params.seed = seed;
    auto grammar = make_grammar(vocab, {gbnf});
    bool eog = false;
    // The logits favour what the grammar refuses: '}' too early, the end of generation always.
    const std::string text = generate(
        vocab, *grammar, params,
        [&](std::vector<float>& logits) {
          logits[vocab.eog] += 30.0f;
          logits['}'] += 20.0f;
        },
        &eog);
    EXPECT_TRUE(accepts(gbnf, text)) << "seed " << seed << ": " << text;
    EXPECT_TRUE(grammar->complete() || eog) << text;
  }
}

TEST(ConstrainedSampler, EndOfGenerationOnlyWhereTheGrammarMayEnd) {
  Vocab vocab;
  auto grammar = make_grammar(vocab, {R"(root ::= [a-c]+)"});
  EXPECT_FALSE(grammar->allows(vocab.eog));
  std::string problem;
  ASSERT_TRUE(grammar->accept(vocab.id("a"), &problem));
  EXPECT_TRUE(grammar->allows(vocab.eog));  // "a" is a whole sentence; more may follow
  EXPECT_FALSE(grammar->complete());
  SamplingParams greedy;
  greedy.temperature = 0;
  std::vector<float> logits(vocab.table->size(), 0.0f);
  logits[vocab.eog] = 10.0f;
  Sampler sampler(greedy, vocab.table->size());
  EXPECT_EQ(sampler.sample(logits.data(), grammar.get()), vocab.eog);
}

TEST(ConstrainedSampler, NoAllowedTokenIsReported) {
  Vocab vocab;
  auto grammar = make_grammar(vocab, {R"(root ::= <[5000]>)"});  // a token the vocabulary lacks
  std::vector<float> logits(vocab.table->size(), 0.0f);
  SamplingParams params;
  params.seed = 1;
  Sampler sampler(params, vocab.table->size());
  EXPECT_EQ(sampler.sample(logits.data(), grammar.get()), kNoToken);
}

TEST(ConstrainedSampler, PrefillIsReadBeforeTheFirstToken) {
  Vocab vocab;
  GrammarConstraint constraint{R"(root ::= "<call>" [a-z])"};
  constraint.prefill = "<call>";
  auto grammar = make_grammar(vocab, constraint);
  EXPECT_FALSE(grammar->allows(vocab.id("<")));
  EXPECT_TRUE(grammar->allows(vocab.id("q")));
}

GrammarConstraint lazy_call_grammar(GrammarTrigger trigger) {
  GrammarConstraint c{R"(root ::= "<call>" [a-z]+ "</call>")", true};
  c.triggers.push_back(std::move(trigger));
  return c;
}

TEST(LazyGrammar, FreeUntilTheTriggerWordThenConstrainedFromItsStart) {
  Vocab vocab;
  auto grammar = make_grammar(vocab, lazy_call_grammar({GrammarTrigger::Kind::WORD, "<call>"}));
  std::string problem;
  for (const char* free : {"H", "i", "!", "}"}) {
    EXPECT_FALSE(grammar->constraining());
    EXPECT_TRUE(grammar->allows(vocab.id(free)));
    ASSERT_TRUE(grammar->accept(vocab.id(free), &problem)) << problem;
  }
  EXPECT_TRUE(grammar->allows(vocab.eog));
  // The trigger arrives split over two tokens, the first with free text before it.
  ASSERT_TRUE(grammar->accept(vocab.id("xx<ca"), &problem)) << problem;
  EXPECT_FALSE(grammar->constraining());
  ASSERT_TRUE(grammar->accept(vocab.id("ll>"), &problem)) << problem;
  EXPECT_TRUE(grammar->constraining());
  EXPECT_FALSE(grammar->allows(vocab.id("1")));
  EXPECT_FALSE(grammar->allows(vocab.eog));
  EXPECT_TRUE(grammar->allows(vocab.id("q")));
}

TEST(LazyGrammar, PatternAndTokenTriggers) {
  Vocab vocab;
  std::string problem;
  auto by_pattern =
      make_grammar(vocab, lazy_call_grammar({GrammarTrigger::Kind::PATTERN, "<c[a-z]+>"}));
  ASSERT_TRUE(by_pattern->accept(vocab.id("<call>"), &problem)) << problem;
  EXPECT_TRUE(by_pattern->constraining());
  EXPECT_FALSE(by_pattern->allows(vocab.id("<")));

  // A full-pattern trigger must match all the text so far.
  auto full =
      make_grammar(vocab, lazy_call_grammar({GrammarTrigger::Kind::PATTERN_FULL, "(<call>)"}));
  ASSERT_TRUE(full->accept(vocab.id("x"), &problem));
  ASSERT_TRUE(full->accept(vocab.id("<call>"), &problem));
  EXPECT_FALSE(full->constraining());

  GrammarTrigger token_trigger{GrammarTrigger::Kind::TOKEN, "<call>", vocab.id("<call>")};
  auto by_token = make_grammar(vocab, lazy_call_grammar(token_trigger));
  ASSERT_TRUE(by_token->accept(vocab.id("x"), &problem));
  EXPECT_FALSE(by_token->constraining());
  ASSERT_TRUE(by_token->accept(vocab.id("<call>"), &problem)) << problem;
  EXPECT_TRUE(by_token->constraining());
  EXPECT_TRUE(by_token->allows(vocab.id("z")));
}

TEST(LazyGrammar, SampledOutputAfterTheTriggerFollowsTheGrammar) {
  Vocab vocab;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    auto grammar = make_grammar(vocab, lazy_call_grammar({GrammarTrigger::Kind::WORD, "<call>"}));
    SamplingParams params;
    params.temperature = 1.5f;
    params.seed = seed;
    int step = 0;
    bool eog = false;
    // The trigger becomes likely after a few free tokens; then '>' and the end are favoured.
    const std::string text = generate(
        vocab, *grammar, params,
        [&](std::vector<float>& logits) {
          logits[vocab.eog] = grammar->constraining() ? 30.0f : -30.0f;
          logits['>'] += 20.0f;
          if (++step > 3) logits[vocab.id("<call>")] += 40.0f;
        },
        &eog);
    const size_t start = text.find("<call>");
    ASSERT_NE(start, std::string::npos) << text;
    EXPECT_TRUE(accepts(R"(root ::= "<call>" [a-z]+ "</call>")", text.substr(start)))
        << "seed " << seed << ": " << text;
  }
}

}  // namespace
}  // namespace allm
