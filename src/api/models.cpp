// GET /health and GET /v1/models.
#include "api/http_util.h"
#include "api/routes.h"
#include "core/conversation_service.h"
#include "core/model_registry.h"
#include "core/readiness.h"
#include "core/text_manager.h"
#include "text/text_memory.h"

namespace allm {

// `placements`: where the loaded text models are; a loaded one says so ("devices").
static json model_object(const ModelEntry& entry, int64_t created,
                         const std::map<std::string, std::vector<DeviceLayers>>& placements) {
  json model;
  model["id"] = entry.id;
  model["object"] = "model";
  model["created"] = created;
  model["owned_by"] = "allm";
  model["modality"] = modality_name(entry.modality);
  if (entry.modality == Modality::AUDIO) {
    model["format"] = "ggml";  // whisper.cpp's model file
    return model;
  }
  if (entry.modality == Modality::IMAGE) {
    model["format"] = "safetensors";  // a Stable Diffusion single file or diffusers folder
    return model;
  }
  const ResolvedFormat resolved =
      resolve_format(probe_model_path(entry.path), entry.registered_format, entry.id);
  model["format"] = resolved.error ? json(nullptr) : json(model_format_name(resolved.format));
  if (resolved.error) {
    model["format_error"] = error_code_name(resolved.error.code);
    return model;
  }
  // What loading will hold in memory for the weights: quantized ones at their quantized size.
  const Quantization quantization = resolved.format == ModelFormat::SAFETENSORS
                                        ? entry.quantization.value_or(Quantization::NONE)
                                        : Quantization::NONE;
  if (resolved.format == ModelFormat::SAFETENSORS) {
    model["quantization"] = quantization_name(quantization);
  }
  model["weights_bytes"] = text_weights_bytes(resolved.format, resolved.file, quantization);
  if (auto it = placements.find(entry.id); it != placements.end()) {
    model["devices"] = devices_json(it->second);
  }
  return model;
}

void register_model_routes(httplib::Server& server, ApiContext& ctx) {
  const int64_t started = unix_time();
  // Liveness: 200 while the process serves; `store` says whether stateful requests can be served.
  server.Get("/health", [&ctx](const httplib::Request&, httplib::Response& res) {
    send_json(res, json{{"status", "ok"},
                        {"store", ctx.conversations.store_available() ? "ok" : "unavailable"}});
  });
  // 503 (with Retry-After) while starting or shutting down: a load balancer sends elsewhere.
  server.Get("/health/ready", [&ctx](const httplib::Request&, httplib::Response& res) {
    const Readiness::Phase phase = ctx.readiness.phase();
    const bool ready = phase == Readiness::Phase::READY;
    if (!ready) res.set_header("Retry-After", "1");
    send_json(res, json{{"status", Readiness::name(phase)}}, ready ? 200 : 503);
  });
  server.Get("/v1/models", [&ctx, started](const httplib::Request&, httplib::Response& res) {
    json data = json::array();
    const auto placements = ctx.text.placements();
    for (const ModelEntry& entry : ctx.registry.list())
      data.push_back(model_object(entry, started, placements));
    send_json(res, json{{"object", "list"}, {"data", data}});
  });
  server.Get(
      "/v1/models/(.+)", [&ctx, started](const httplib::Request& req, httplib::Response& res) {
        const std::string id = req.matches[1];
        auto entry = ctx.registry.find(id);
        if (!entry) {
          send_error(res, request_error("The model '" + quote_excerpt(id) + "' does not exist",
                                        "model", "model_not_found"));
          return;
        }
        send_json(res, model_object(*entry, started, ctx.text.placements()));
      });
}

}  // namespace allm
