#include "core/manager_models.h"

namespace allm {

std::optional<ModelEntry> find_model_of(ModelRegistry& registry, Modality modality,
                                        const std::string& id, Error* error) {
  std::optional<ModelEntry> entry = registry.find(id);
  if (!entry) {
    *error = request_error("The model '" + quote_excerpt(id) + "' does not exist", "model",
                           "model_not_found");
    return std::nullopt;
  }
  if (entry->modality != modality) {
    *error = wrong_modality_error(id, entry->modality, modality);
    return std::nullopt;
  }
  return entry;
}

}  // namespace allm
