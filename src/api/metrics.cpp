// GET /metrics: Prometheus text format.
#include "core/metrics.h"

#include "api/http_util.h"
#include "api/routes.h"
#include "core/text_manager.h"

namespace allm {

void register_metrics_routes(httplib::Server& server, ApiContext& ctx) {
  server.Get("/metrics", [&ctx](const httplib::Request&, httplib::Response& res) {
    Metrics& metrics = Metrics::global();
    // The loaded-model gauges are read now; models unloaded since the last scrape drop out.
    metrics.reset("allm_model_loaded");
    metrics.reset("allm_model_memory_bytes");
    ctx.text.publish_metrics(metrics);
    res.set_content(metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

}  // namespace allm
