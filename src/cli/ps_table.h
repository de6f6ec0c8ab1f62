// `allm ps`'s table, from the JSON of GET /v1/admin/models.
#pragma once

#include <string>

#include "api/http_util.h"

namespace allm {

// "5s", "3m 04s", "2h 10m": a duration as the table shows it.
std::string format_duration(double seconds);

// One header line and one line per model, columns aligned: ID, MODALITY, RAM, VRAM, REQUESTS
// (text models: running and queued), IDLE, UNLOADS (when --keep-alive unloads it).
std::string format_ps_table(const json& loaded_models);

}  // namespace allm
