// GET /v1/admin/models: the models loaded now, their memory, activity and keep-alive (allm ps).
#include "api/http_util.h"
#include "api/routes.h"
#include "core/model_lifecycle.h"
#include "core/text_manager.h"

namespace allm {

static json loaded_model_object(
    const LoadedModelState& model, const std::map<std::string, TextQueueState>& text_queues,
    const std::map<std::string, std::vector<DeviceLayers>>& text_placements) {
  json out;
  out["id"] = model.id;
  out["modality"] = modality_name(model.modality);
  out["memory_bytes"] = model.charge.total();
  out["ram_bytes"] = model.charge.ram;
  out["vram_bytes"] = model.charge.vram;
  out["requests"] = model.requests;
  // Text models say how many of their requests are decoding and how many wait for a sequence.
  if (auto it = text_queues.find(model.id);
      model.modality == Modality::TEXT && it != text_queues.end()) {
    out["running"] = it->second.active_sequences;
    out["queued"] = it->second.waiting;
  }
  if (auto it = text_placements.find(model.id);
      model.modality == Modality::TEXT && it != text_placements.end()) {
    out["devices"] = devices_json(it->second);
  }
  out["idle_seconds"] = model.idle_seconds;
  out["unloads_in_seconds"] =
      model.unloads_in_seconds ? json(*model.unloads_in_seconds) : json(nullptr);
  return out;
}

void register_admin_routes(httplib::Server& server, ApiContext& ctx) {
  server.Get("/v1/admin/models", [&ctx](const httplib::Request&, httplib::Response& res) {
    const std::map<std::string, TextQueueState> text_queues = ctx.text.queue_states();
    const std::map<std::string, std::vector<DeviceLayers>> placements = ctx.text.placements();
    json data = json::array();
    for (const LoadedModelState& model : ctx.lifecycle.loaded_models())
      data.push_back(loaded_model_object(model, text_queues, placements));
    send_json(res, json{{"object", "list"},
                        {"keep_alive_seconds", ctx.lifecycle.config().keep_alive_seconds},
                        {"data", data}});
  });
}

}  // namespace allm
