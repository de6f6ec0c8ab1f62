#include "text/grammar.h"

#include <algorithm>
#include <cmath>
#include <regex>
#include <stdexcept>

#include "llama-grammar.h"
#include "text/utf8.h"

namespace allm {

namespace {

// A token's code points read on from the character an earlier token left unfinished, ending in
// the 0 that llama-grammar's candidates end with, and the character this token leaves
// unfinished. Invalid UTF-8 gives no code points and n_remain -1, which the grammar refuses.
struct DecodedPiece {
  std::vector<uint32_t> code_points;
  llama_partial_utf8 partial{0, 0};
};

DecodedPiece decode_piece(const std::string& bytes, llama_partial_utf8 partial) {
  DecodedPiece out;
  out.code_points.reserve(bytes.size() + 1);
  uint32_t value = partial.value;
  int remain = std::max(partial.n_remain, 0);
  for (unsigned char c : bytes) {
    if (remain > 0) {
      if ((c & 0xC0) != 0x80) return {{0}, {0, -1}};
      value = (value << 6) | (c & 0x3F);
      if (--remain == 0) out.code_points.push_back(value);
    } else if (c < 0x80) {
      out.code_points.push_back(c);
    } else if (c >= 0xC0 && c < 0xE0) {
      value = c & 0x1F, remain = 1;
    } else if (c >= 0xE0 && c < 0xF0) {
      value = c & 0x0F, remain = 2;
    } else if (c >= 0xF0 && c < 0xF8) {
      value = c & 0x07, remain = 3;
    } else {
      return {{0}, {0, -1}};
    }
  }
  out.code_points.push_back(0);
  out.partial = {value, remain};
  return out;
}

// The candidates that no stack of the grammar accepts.
llama_grammar_candidates refused_by_every_stack(const llama_grammar& grammar,
                                                llama_grammar_candidates candidates) {
  for (const llama_grammar_stack& stack : grammar.stacks) {
    if (candidates.empty()) break;
    candidates = llama_grammar_reject_candidates_for_stack(grammar.rules, stack, candidates);
  }
  return candidates;
}

std::string regex_escape(const std::string& text) {
  static const std::string kSpecial = "\\^$.|?*+()[]{}";
  std::string out;
  for (char c : text) {
    if (kSpecial.find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

// The regular expressions llama-grammar searches the generated text with, one per word or
// pattern trigger; a PATTERN_FULL must match the whole text, so it is anchored.
std::vector<std::string> trigger_patterns(const std::vector<GrammarTrigger>& triggers) {
  std::vector<std::string> out;
  for (const GrammarTrigger& trigger : triggers) {
    if (trigger.kind == GrammarTrigger::Kind::WORD) {
      out.push_back(regex_escape(trigger.value));
    } else if (trigger.kind == GrammarTrigger::Kind::PATTERN) {
      out.push_back(trigger.value);
    } else if (trigger.kind == GrammarTrigger::Kind::PATTERN_FULL) {
      const std::string& p = trigger.value;
      out.push_back((p.empty() || p.front() != '^' ? "^" : "") + p +
                    (p.empty() || p.back() != '$' ? "$" : ""));
    }
  }
  return out;
}

}  // namespace

std::shared_ptr<const TokenTable> TokenTable::read(const TextBackend& backend) {
  auto table = std::make_shared<TokenTable>();
  const int size = backend.vocab_size();
  table->bytes.reserve(size);
  table->end_of_generation.reserve(size);
  for (Token t = 0; t < size; ++t) {
    table->bytes.push_back(backend.token_bytes(t));
    table->end_of_generation.push_back(backend.is_end_of_generation(t));
  }
  return table;
}

TokenGrammar::TokenGrammar(llama_grammar* grammar, std::shared_ptr<const TokenTable> tokens)
    : grammar_(grammar), tokens_(std::move(tokens)) {}

TokenGrammar::~TokenGrammar() {
  llama_grammar_free_impl(grammar_);
}

std::unique_ptr<TokenGrammar> TokenGrammar::create(const GrammarConstraint& constraint,
                                                   std::shared_ptr<const TokenTable> tokens,
                                                   Error* error) {
  const std::vector<std::string> patterns = trigger_patterns(constraint.triggers);
  std::vector<const char*> pattern_ptrs;
  for (const std::string& p : patterns) pattern_ptrs.push_back(p.c_str());
  std::vector<llama_token> trigger_tokens;
  for (const GrammarTrigger& trigger : constraint.triggers) {
    if (trigger.kind == GrammarTrigger::Kind::TOKEN) trigger_tokens.push_back(trigger.token);
  }
  // No llama.cpp vocabulary: tokens are checked by their bytes (a token named in the grammar
  // must be written by id, <[id]>).
  std::unique_ptr<TokenGrammar> result;
  try {
    llama_grammar* grammar = llama_grammar_init_impl(
        nullptr, constraint.gbnf.c_str(), "root", constraint.lazy, pattern_ptrs.data(),
        pattern_ptrs.size(), trigger_tokens.data(), trigger_tokens.size());
    if (!grammar) {
      *error = make_error(ErrorCode::INTERNAL,
                          "the output grammar is not valid GBNF with a 'root' rule (see the log)");
      return nullptr;
    }
    result.reset(new TokenGrammar(grammar, std::move(tokens)));
    if (!constraint.lazy && !constraint.prefill.empty()) {
      result->accept_bytes(LLAMA_TOKEN_NULL, constraint.prefill);
    }
  } catch (const std::exception& e) {
    *error = make_error(ErrorCode::INTERNAL, std::string("the output grammar failed: ") + e.what());
    return nullptr;
  }
  return result;
}

// Not empty and free of NUL bytes too: llama-grammar reads a piece as a C string, so a NUL would
// hide the rest of the token from it.
bool TokenGrammar::readable(const std::string& bytes) const {
  return !bytes.empty() && bytes.find('\0') == std::string::npos &&
         is_utf8_prefix(unfinished_.empty() ? bytes : unfinished_ + bytes);
}

bool TokenGrammar::constraining() const {
  return !grammar_->awaiting_trigger;
}

bool TokenGrammar::allows(Token token) const {
  if (!constraining()) return true;
  if (tokens_->end_of_generation[token]) return can_end();
  const std::string& bytes = tokens_->bytes[token];
  if (!readable(bytes)) return false;
  const DecodedPiece piece = decode_piece(bytes, grammar_->partial_utf8);
  return refused_by_every_stack(*grammar_, {{0, piece.code_points.data(), piece.partial, token}})
      .empty();
}

int TokenGrammar::mask(float* scores) const {
  const bool end_allowed = can_end();
  std::vector<DecodedPiece> pieces;
  pieces.reserve(tokens_->size());
  llama_grammar_candidates candidates;
  int allowed = 0;
  for (Token t = 0; t < tokens_->size(); ++t) {
    if (std::isinf(scores[t]) && scores[t] < 0) continue;
    if (tokens_->end_of_generation[t]) {
      if (end_allowed) {
        ++allowed;
      } else {
        scores[t] = -INFINITY;
      }
    } else if (!readable(tokens_->bytes[t])) {
      scores[t] = -INFINITY;
    } else {
      pieces.push_back(decode_piece(tokens_->bytes[t], grammar_->partial_utf8));
      candidates.push_back(
          {static_cast<size_t>(t), pieces.back().code_points.data(), pieces.back().partial, t});
      ++allowed;
    }
  }
  for (const llama_grammar_candidate& refused :
       refused_by_every_stack(*grammar_, std::move(candidates))) {
    scores[refused.index] = -INFINITY;
    --allowed;
  }
  return allowed;
}

bool TokenGrammar::accept(Token token, std::string* problem) {
  try {
    if (!constraining()) {
      await_trigger(token);
    } else if (!tokens_->end_of_generation[token]) {
      accept_bytes(token, tokens_->bytes[token]);
    }
    return true;
  } catch (const std::exception& e) {
    *problem = e.what();
    return false;
  }
}

void TokenGrammar::accept_bytes(Token token, const std::string& bytes) {
  llama_grammar_accept_token(*grammar_, token, bytes);
  unfinished_ += bytes;
  unfinished_.erase(0, unfinished_.size() - incomplete_utf8_tail(unfinished_));
}

// A lazy grammar collects the text until a trigger token or pattern appears; from there on the
// grammar reads what was generated (from the trigger's start: a token that began before it
// contributes only its tail) and constrains what follows.
void TokenGrammar::await_trigger(Token token) {
  llama_grammar& g = *grammar_;
  const std::string& bytes = tokens_->bytes[token];
  if (std::find(g.trigger_tokens.begin(), g.trigger_tokens.end(), token) !=
      g.trigger_tokens.end()) {
    g.awaiting_trigger = false;
    g.trigger_buffer.clear();
    g.trigger_buffer_positions.clear();
    accept_bytes(token, bytes);
    return;
  }
  const size_t begin = g.trigger_buffer.size();
  g.trigger_buffer += bytes;
  g.trigger_buffer_positions.push_back({token, {begin, g.trigger_buffer.size()}});
  for (const llama_grammar_trigger_pattern& pattern : g.trigger_patterns) {
    const size_t start = pattern.find(g.trigger_buffer);
    if (start == std::string::npos) continue;
    g.awaiting_trigger = false;
    const std::string text = std::move(g.trigger_buffer);
    const auto positions = std::move(g.trigger_buffer_positions);
    g.trigger_buffer.clear();
    g.trigger_buffer_positions.clear();
    for (const auto& [buffered, span] : positions) {
      if (span.second <= start) continue;
      const size_t from = std::max(span.first, start);
      accept_bytes(buffered, text.substr(from, span.second - from));
    }
    return;
  }
}

bool TokenGrammar::can_end() const {
  return std::any_of(grammar_->stacks.begin(), grammar_->stacks.end(),
                     [](const llama_grammar_stack& stack) { return stack.empty(); });
}

bool TokenGrammar::complete() const {
  return constraining() &&
         std::all_of(grammar_->stacks.begin(), grammar_->stacks.end(),
                     [](const llama_grammar_stack& stack) { return stack.empty(); });
}

}  // namespace allm
