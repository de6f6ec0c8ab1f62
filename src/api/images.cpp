// POST /v1/images/generations (OpenAI's Images API, JSON) and GET /v1/images/files/{id} (the
// short-lived files behind response_format "url").
#include <algorithm>
#include <charconv>
#include <string_view>

#include "api/http_util.h"
#include "api/model_advice.h"
#include "api/routes.h"
#include "core/image_manager.h"
#include "image/diffusion_runner.h"

namespace allm {

namespace {

constexpr size_t kMaxPromptBytes = 16 * 1024;
constexpr int64_t kMaxSeed = (int64_t(1) << 53) - 1;  // exact in every JSON client

// One side of a size: decimal digits only (no sign, no spaces) that fit an int and are not 0.
bool parse_side(std::string_view digits, int* side) {
  const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), is_digit)) return false;
  const auto result = std::from_chars(digits.data(), digits.data() + digits.size(), *side);
  return result.ec == std::errc() && *side > 0;  // out of range: not a size
}

// "WIDTHxHEIGHT"; false when it is not that shape (the manager checks the bounds).
bool parse_size(std::string_view size, int* width, int* height) {
  const size_t x = size.find('x');
  return x != std::string_view::npos && parse_side(size.substr(0, x), width) &&
         parse_side(size.substr(x + 1), height);
}

struct ImageCall {
  ImageRequest request;
  bool url = false;
};

Error read_call(const json& body, const ImageManagerConfig& config, ImageCall* call) {
  ParamReader params(body);
  ImageRequest& r = call->request;
  auto model = params.string("model", true);
  auto prompt = params.string("prompt", true);
  auto negative = params.string("negative_prompt");
  auto n = params.integer("n", 1, 10);
  auto size = params.string("size");
  auto format = params.string("response_format");
  auto steps = params.integer("steps", 1, config.max_steps);
  auto cfg = params.number("cfg_scale", 0.0, 30.0);
  auto seed = params.integer("seed", 0, kMaxSeed);
  auto sampler = params.string("sampler");
  if (params.error) return params.error;
  if (prompt->empty()) return request_error("'prompt' must not be empty", "prompt");
  if (prompt->size() > kMaxPromptBytes || (negative && negative->size() > kMaxPromptBytes)) {
    return request_error("the prompt is longer than " + std::to_string(kMaxPromptBytes) + " bytes",
                         prompt->size() > kMaxPromptBytes ? "prompt" : "negative_prompt");
  }
  if (size && *size != "auto" && !parse_size(*size, &r.width, &r.height)) {
    return request_error(
        "'size' must be WIDTHxHEIGHT (e.g. 512x512), got '" + size->substr(0, 32) + "'", "size");
  }
  if (format && *format != "b64_json" && *format != "url") {
    return request_error("'response_format' must be 'b64_json' or 'url'", "response_format");
  }
  if (sampler && !known_sampler(*sampler)) {
    return request_error(
        "'sampler' must be one of " + sampler_names() + "; got '" + sampler->substr(0, 32) + "'",
        "sampler");
  }
  r.model = *model;
  r.prompt = *prompt;
  r.negative_prompt = negative.value_or("");
  r.n = static_cast<int>(n.value_or(1));
  r.steps = static_cast<int>(steps.value_or(20));
  r.cfg_scale = static_cast<float>(cfg.value_or(7.0));
  if (seed) r.seed = static_cast<uint64_t>(*seed);
  r.sampler = sampler.value_or("euler_a");
  call->url = format && *format == "url";
  return {};
}

void handle_generations(ApiContext& ctx, const std::string& public_url, const httplib::Request& req,
                        httplib::Response& res) {
  json body;
  Error error;
  ImageCall call;
  if (!parse_json_body(req, &body, &error) ||
      (error = read_call(body, ctx.images.config(), &call))) {
    send_error(res, error);
    return;
  }
  call.request.client_gone = [&req] { return req.is_connection_closed(); };
  std::vector<GeneratedImage> images;
  if ((error = ctx.images.generate(call.request, &images))) {
    send_error(res, with_endpoint_advice(error, ctx.registry, call.request.model, Modality::IMAGE));
    return;
  }
  json data = json::array();
  for (GeneratedImage& image : images) {
    json item = json::object();
    if (call.url) {
      item["url"] = public_url + "/v1/images/files/" + ctx.images.files().put(std::move(image.png));
    } else {
      item["b64_json"] = base64(image.png);
    }
    item["revised_prompt"] = call.request.prompt;  // used as given
    item["seed"] = image.seed;
    data.push_back(std::move(item));
  }
  send_json(res, json{{"created", unix_time()}, {"data", std::move(data)}});
}

}  // namespace

void register_image_routes(httplib::Server& server, ApiContext& ctx,
                           const std::string& public_url) {
  server.Post("/v1/images/generations",
              [&ctx, &public_url](const httplib::Request& req, httplib::Response& res) {
                handle_generations(ctx, public_url, req, res);
              });
  server.Get(R"(/v1/images/files/([A-Za-z0-9_]+))",
             [&ctx](const httplib::Request& req, httplib::Response& res) {
               std::optional<std::string> png = ctx.images.files().find(req.matches[1]);
               if (!png) {
                 send_error(res, request_error("no image '" + std::string(req.matches[1]) +
                                                   "' (image files are kept for a short while)",
                                               "", "not_found"));
                 return;
               }
               res.set_content(std::move(*png), "image/png");
             });
}

}  // namespace allm
