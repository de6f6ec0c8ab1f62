#include "core/manager_models.h"

namespace allm {

std::optional<ModelEntry> find_model_of(ModelRegistry& registry, Modality modality,
                                        const std::string& use, const std::string& id,
                                        Error* error) {
  std::optional<ModelEntry> entry = registry.find(id);
  if (!entry) {
    *error = request_error("The model '" + quote_excerpt(id) + "' does not exist", "model",
                           "model_not_found");
    return std::nullopt;
  }
  if (entry->modality != modality) {
    const std::string what = modality_name(entry->modality);
    const char* article = what.find_first_of("aeiou") == 0 ? "an " : "a ";
    *error =
        request_error("The model '" + id + "' is " + article + what + " model; " + use, "model");
    return std::nullopt;
  }
  return entry;
}

}  // namespace allm
