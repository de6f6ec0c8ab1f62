// Token log probabilities as OpenAI's APIs return them (chat `logprobs.content`, the Responses
// API's output_text `logprobs`): the same entry on both.
#pragma once

#include <vector>

#include "api/http_util.h"
#include "text/generation.h"

namespace allm {

// One entry per generated token, with its raw bytes (a token may be part of a character):
// {token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}.
json logprob_entry(const TokenLogprob& logprob);
// Appends an entry per token to `entries` (an array).
void append_logprob_entries(const std::vector<TokenLogprob>& logprobs, json* entries);

}  // namespace allm
