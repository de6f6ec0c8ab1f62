// A small vocabulary of our own for grammar tests (not a llama.cpp one): tokens 0-255 are the
// single bytes, then a few longer pieces, then the end of generation.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "text/grammar.h"

namespace allm {
namespace {

struct Vocab {
  std::shared_ptr<TokenTable> table = std::make_shared<TokenTable>();
  Token eog = 0;

  Vocab() {
    for (int b = 0; b < 256; ++b) add(std::string(1, static_cast<char>(b)));
    for (const char* piece : {"{\"", "\":", "true", "false", "null", "12", "<call>", "xx<ca", "ll>",
                              "é", "\xC3", "\xA9", "\"}", "]]"}) {
      add(piece);
    }
    eog = add("");
    table->end_of_generation[eog] = true;
  }
  Token add(const std::string& bytes) {
    table->bytes.push_back(bytes);
    table->end_of_generation.push_back(false);
    return table->size() - 1;
  }
  Token id(const std::string& bytes) const {
    for (Token t = 0; t < table->size(); ++t) {
      if (table->bytes[t] == bytes && !table->end_of_generation[t]) return t;
    }
    ADD_FAILURE() << "no token " << bytes;
    return 0;
  }
};

std::unique_ptr<TokenGrammar> make_grammar(const Vocab& vocab, const GrammarConstraint& c) {
  Error error;
  auto grammar = TokenGrammar::create(c, vocab.table, &error);
  EXPECT_TRUE(grammar) << error.message;
  return grammar;
}

// Whether the grammar reads `text` byte by byte (after its prefill) and may end after it.
bool accepts(const GrammarConstraint& constraint, const std::string& text) {
  Vocab vocab;
  auto grammar = make_grammar(vocab, constraint);
  if (!grammar) return false;
  for (unsigned char c : text) {
    std::string problem;
    if (!grammar->allows(c) || !grammar->accept(c, &problem)) return false;
  }
  return grammar->can_end() && grammar->allows(vocab.eog);
}

bool accepts(const std::string& gbnf, const std::string& text) {
  return accepts(GrammarConstraint{gbnf}, text);
}

}  // namespace
}  // namespace allm
