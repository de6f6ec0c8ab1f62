#include "api/model_advice.h"

namespace allm {

namespace {

const char* endpoints_for(Modality modality) {
  switch (modality) {
    case Modality::AUDIO: return "/v1/audio/transcriptions or /v1/audio/translations";
    case Modality::IMAGE: return "/v1/images/generations or /v1/images/edits";
    default: return "/v1/responses or /v1/chat/completions";
  }
}

}  // namespace

Error with_endpoint_advice(Error error, ModelRegistry& registry, const std::string& model_id,
                           Modality served) {
  if (error.param != "model") return error;
  // A manager refuses a model it has found for nothing but its modality.
  const std::optional<ModelEntry> entry = registry.find(model_id);
  if (entry && entry->modality != served) {
    error.message += std::string("; use it with ") + endpoints_for(entry->modality);
  }
  return error;
}

}  // namespace allm
