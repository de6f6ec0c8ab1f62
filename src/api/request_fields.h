// Every top-level request field of the text and image endpoints in the OpenAI API reference, and
// what each gets here: read by the endpoint's parser, accepted with a documented meaning, or
// refused with an error that names it. Nothing a client sends is dropped without a word: a field
// the reference does not know is a 400 `unknown_parameter`, one we do not offer is `UNSUPPORTED`.
#pragma once

#include "api/http_util.h"
#include "text/sampler.h"

namespace allm {

// POST /v1/responses.
Error check_responses_fields(const json& body);
// POST /v1/chat/completions.
Error check_chat_fields(const json& body);
// POST /v1/completions.
Error check_completions_fields(const json& body);
// POST /v1/messages and /v1/messages/count_tokens (Anthropic).
Error check_messages_fields(const json& body);
Error check_count_tokens_fields(const json& body);
// POST /v1/images/generations.
Error check_image_fields(const json& body);
// POST /v1/images/edits (its form's text fields, typed as JSON).
Error check_image_edit_fields(const json& body);

// The sampling parameters the OpenAI text endpoints share: temperature, top_p, presence_penalty,
// frequency_penalty, seed, and the extensions top_k and min_p.
void read_sampling(ParamReader& params, SamplingParams* sampling);
// `stop`: a string or an array of up to 4 strings.
Error read_stop(const json& body, std::vector<std::string>* stop);

}  // namespace allm
