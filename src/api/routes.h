// The HTTP routes, one file per endpoint family; each only parses, calls a manager, serialises.
#pragma once

#include <string>

#include "httplib.h"

namespace allm {

class ModelRegistry;
class ModelLifecycle;
class TextManager;
class AudioManager;
class ImageManager;
class ConversationService;
class BackgroundJobs;
class Readiness;

struct ApiContext {
  ModelRegistry& registry;
  ModelLifecycle& lifecycle;  // which models are loaded, for /metrics and /v1/admin/models
  TextManager& text;
  ConversationService& conversations;  // the Responses API's stored responses
  BackgroundJobs& background;          // background responses being generated
  AudioManager& audio;
  ImageManager& images;
  const Readiness& readiness;  // GET /health/ready
};

void register_model_routes(httplib::Server& server, ApiContext& ctx);
void register_responses_routes(httplib::Server& server, ApiContext& ctx);
void register_chat_completions_routes(httplib::Server& server, ApiContext& ctx);
void register_embeddings_routes(httplib::Server& server, ApiContext& ctx);
void register_completions_routes(httplib::Server& server, ApiContext& ctx);
// Anthropic's Messages API: POST /v1/messages and /v1/messages/count_tokens.
void register_messages_routes(httplib::Server& server, ApiContext& ctx);
void register_audio_routes(httplib::Server& server, ApiContext& ctx);
// `public_url`: where clients reach the server (no trailing '/'), for image urls; kept by
// reference (the server sets it once bound) and read at each request.
void register_image_routes(httplib::Server& server, ApiContext& ctx, const std::string& public_url);
void register_metrics_routes(httplib::Server& server, ApiContext& ctx);
// GET /v1/admin/models: what `allm ps` shows.
void register_admin_routes(httplib::Server& server, ApiContext& ctx);

}  // namespace allm
