// Advice on a model used on the wrong endpoint: core says what the model is, the API layer names
// the endpoints that serve it.
#pragma once

#include <string>

#include "base/error.h"
#include "core/model_registry.h"

namespace allm {

// `error` as a manager of `served` models returned it; when it refuses `model_id` for being of
// another modality (wrong_modality_error), with the endpoints that serve that model added.
Error with_endpoint_advice(Error error, ModelRegistry& registry, const std::string& model_id,
                           Modality served);

}  // namespace allm
