// Each endpoint's request parser on its own, without a server or managers: the fuzz targets
// (tests/fuzz) and tests call these with arbitrary requests. They answer exactly what the
// endpoint would answer before any model is touched.
#pragma once

#include "api/http_util.h"

namespace allm {

class ConversationService;

// POST /v1/chat/completions with `body` (already a JSON object).
Error check_chat_completions_request(const json& body);
// POST /v1/completions with `body`.
Error check_completions_request(const json& body);
// POST /v1/messages with `body`.
Error check_messages_request(const json& body);
// POST /v1/responses with `body`; `conversations` answers previous_response_id.
Error check_responses_request(const json& body, ConversationService& conversations);
// POST /v1/embeddings with `body`.
Error check_embeddings_request(const json& body);
// POST /v1/audio/transcriptions with `req` (httplib has parsed the multipart form into req.form).
Error check_audio_request(const httplib::Request& req);

}  // namespace allm
