// Every top-level request field of the text and image endpoints in the OpenAI API reference, and
// what each gets here: read by the endpoint's parser, accepted with a documented meaning, or
// refused with an error that names it. Nothing a client sends is dropped without a word: a field
// the reference does not know is a 400 `unknown_parameter`, one we do not offer is `UNSUPPORTED`.
#pragma once

#include "api/http_util.h"

namespace allm {

// POST /v1/responses.
Error check_responses_fields(const json& body);
// POST /v1/chat/completions.
Error check_chat_fields(const json& body);
// POST /v1/images/generations.
Error check_image_fields(const json& body);
// POST /v1/images/edits (its form's text fields, typed as JSON).
Error check_image_edit_fields(const json& body);

}  // namespace allm
