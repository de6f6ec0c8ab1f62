// GET /metrics: Prometheus text format.
#include "core/metrics.h"

#include "api/http_util.h"
#include "api/routes.h"
#include "core/model_lifecycle.h"
#include "core/text_manager.h"

namespace allm {

void register_metrics_routes(httplib::Server& server, ApiContext& ctx) {
  server.Get("/metrics", [&ctx](const httplib::Request&, httplib::Response& res) {
    Metrics& metrics = Metrics::global();
    ctx.lifecycle.publish_metrics(metrics);
    ctx.text.publish_metrics(metrics);
    res.set_content(metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

}  // namespace allm
