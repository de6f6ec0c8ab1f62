// Constrained decoding for every backend: llama.cpp's grammar engine (src/llama-grammar.*)
// driven with the backend's own token bytes instead of a llama.cpp vocabulary, so GGUF and
// safetensors models share one engine. The grammar is GBNF; a lazy grammar leaves the text free
// until a trigger appears and constrains it from the trigger on.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "text/backend.h"
#include "text/generation.h"

struct llama_grammar;

namespace allm {

// Every token's bytes and whether it ends generation: what a grammar checks tokens against.
struct TokenTable {
  std::vector<std::string> bytes;
  std::vector<bool> end_of_generation;

  static std::shared_ptr<const TokenTable> read(const TextBackend& backend);
  int size() const { return static_cast<int>(bytes.size()); }
};

class TokenGrammar {
 public:
  // INTERNAL when the GBNF does not parse, has no `root` rule, or a trigger pattern is not a
  // valid regular expression.
  static std::unique_ptr<TokenGrammar> create(const GrammarConstraint& constraint,
                                              std::shared_ptr<const TokenTable> tokens,
                                              Error* error);
  ~TokenGrammar();
  TokenGrammar(const TokenGrammar&) = delete;
  TokenGrammar& operator=(const TokenGrammar&) = delete;

  // False while a lazy grammar waits for its trigger: every token is allowed then.
  bool constraining() const;
  bool allows(Token token) const;
  // Sets the score of every token the constraining grammar refuses to -infinity; returns how
  // many remain.
  int mask(float* scores) const;
  // Advances past the sampled token (one the grammar allows); false, with a message, when the
  // grammar cannot follow it after all (a lazy grammar whose trigger text it does not accept).
  bool accept(Token token, std::string* problem);
  // Whether the text so far is a whole sentence of the grammar (the end of generation may come).
  bool can_end() const;
  // Whether nothing may follow: the grammar is done and generation stops.
  bool complete() const;

 private:
  TokenGrammar(llama_grammar* grammar, std::shared_ptr<const TokenTable> tokens);
  void accept_bytes(Token token, const std::string& bytes);
  void await_trigger(Token token);

  // Whether the grammar may read `bytes` as text: valid UTF-8 after what it read so far.
  bool readable(const std::string& bytes) const;

  llama_grammar* grammar_;
  std::shared_ptr<const TokenTable> tokens_;
  // The bytes of a character the grammar has begun to read but not finished. llama-grammar
  // tracks them only as far as its character classes need, which lets surrogates and overlong
  // forms through; they are refused here.
  std::string unfinished_;
};

}  // namespace allm
