// POST /v1/images/generations (OpenAI's Images API, JSON), POST /v1/images/edits (multipart:
// image to image and inpainting) and GET /v1/images/files/{id} (the short-lived files behind
// response_format "url").
#include <algorithm>
#include <charconv>
#include <set>
#include <string_view>

#include "api/form_data.h"
#include "api/http_util.h"
#include "api/model_advice.h"
#include "api/request_fields.h"
#include "api/routes.h"
#include "core/image_manager.h"
#include "image/diffusion_runner.h"
#include "image/image_input.h"

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

// The form's text fields as a JSON body, numbers and booleans typed where the field takes one, so
// that the generations' reader checks them alike (a value that is not one stays a string, and
// gets that reader's type error).
Error form_as_json(const httplib::MultipartFormData& form, json* body) {
  static const std::set<std::string> kNumbers = {
      "n", "steps", "cfg_scale", "seed", "strength", "partial_images", "output_compression"};
  *body = json::object();
  for (const auto& [name, field] : form.fields) {
    if (name == "image" || name == "image[]" || name == "mask") continue;  // the uploads
    if (body->contains(name)) {
      return request_error("the field '" + quote_excerpt(name) + "' is given more than once", name);
    }
    json value = field.content;
    if (kNumbers.count(name)) {
      json number = json::parse(field.content, nullptr, false);
      if (number.is_number()) value = std::move(number);
    } else if (name == "stream" && (field.content == "true" || field.content == "false")) {
      value = field.content == "true";
    }
    (*body)[name] = std::move(value);
  }
  return {};
}

Error decode_upload(const std::string& bytes, const char* field, RgbaImage* image) {
  std::string problem;
  if (decode_image(bytes, kMaxUploadPixels, image, &problem)) return {};
  return request_error(std::string("'") + field + "' " + problem, field);
}

std::string size_text(int width, int height) {
  return std::to_string(width) + "x" + std::to_string(height);
}

// The image, and the mask (an explicit one, else the image's own transparency when it has
// some), at the request's size: `size`, else the image's own rounded down to multiples of 8.
Error read_edit_images(const httplib::MultipartFormData& form, const ImageManager& images,
                       ImageRequest* r) {
  Error error;
  const std::string* image_file = find_form_file(form, "image", "the image to edit", true, &error);
  if (!image_file) return error;
  const std::string* mask_file = find_form_file(form, "mask", "", false, &error);
  if (error) return error;
  RgbaImage image, mask;
  if ((error = decode_upload(*image_file, "image", &image))) return error;
  if (mask_file && (error = decode_upload(*mask_file, "mask", &mask))) return error;
  if (mask_file && (mask.width != image.width || mask.height != image.height)) {
    return request_error("the mask is " + size_text(mask.width, mask.height) +
                             " but the image is " + size_text(image.width, image.height) +
                             "; they must be the same size",
                         "mask");
  }
  if (mask_file && !mask.has_alpha) {
    return request_error(
        "the mask needs an alpha channel: its fully transparent pixels are repainted", "mask");
  }
  const bool own_size = r->width == 0;
  if (own_size) {
    r->width = image.width / 8 * 8;
    r->height = image.height / 8 * 8;
  }
  if ((error = images.check_size(r->width, r->height))) {
    if (own_size) {
      error.message = "the image is " + size_text(image.width, image.height) +
                      " and edits keep its size (rounded down to multiples of 8) unless 'size' "
                      "is given; " +
                      error.message;
    }
    return error;
  }
  const auto at_size = [r](const RgbaImage& in) {
    return in.width == r->width && in.height == r->height ? in
                                                          : resize_image(in, r->width, r->height);
  };
  r->init_rgb = rgb_bytes(at_size(image));
  const RgbaImage* mask_source = mask_file ? &mask : image.has_alpha ? &image : nullptr;
  if (mask_source) {
    std::vector<uint8_t> repaint = transparent_pixels(at_size(*mask_source));
    const bool any = std::find(repaint.begin(), repaint.end(), 1) != repaint.end();
    if (mask_file || any) r->mask = std::move(repaint);
  }
  return {};
}

Error read_edit_call(const httplib::Request& req, const ImageManager& images, ImageCall* call) {
  if (!req.is_multipart_form_data()) {
    return request_error(
        "the request must be multipart/form-data with 'image', 'prompt' and 'model'", "",
        "invalid_request");
  }
  json body;
  Error error;
  if ((error = check_form_field_sizes(req.form)) || (error = form_as_json(req.form, &body)) ||
      (error = check_image_edit_fields(body)) || (error = read_call(body, images.config(), call))) {
    return error;
  }
  ParamReader params(body);
  auto strength = params.number("strength", 0.0, 1.0);
  if (params.error) return params.error;
  if ((error = read_edit_images(req.form, images, &call->request))) return error;
  // Inpainting repaints the masked part from noise; image to image keeps the image's outline
  // (diffusers' defaults for the two pipelines).
  const double default_strength = call->request.mask.empty() ? 0.8 : 1.0;
  call->request.strength = static_cast<float>(strength.value_or(default_strength));
  return {};
}

void generate_and_send(ApiContext& ctx, const std::string& public_url, const httplib::Request& req,
                       ImageCall& call, httplib::Response& res) {
  Error error;
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

void handle_generations(ApiContext& ctx, const std::string& public_url, const httplib::Request& req,
                        httplib::Response& res) {
  json body;
  Error error;
  ImageCall call;
  if (!parse_json_body(req, &body, &error) || (error = check_image_fields(body)) ||
      (error = read_call(body, ctx.images.config(), &call))) {
    send_error(res, error);
    return;
  }
  generate_and_send(ctx, public_url, req, call, res);
}

void handle_edits(ApiContext& ctx, const std::string& public_url, const httplib::Request& req,
                  httplib::Response& res) {
  ImageCall call;
  if (Error error = read_edit_call(req, ctx.images, &call)) {
    send_error(res, error);
    return;
  }
  generate_and_send(ctx, public_url, req, call, res);
}

}  // namespace

void register_image_routes(httplib::Server& server, ApiContext& ctx,
                           const std::string& public_url) {
  server.Post("/v1/images/generations",
              [&ctx, &public_url](const httplib::Request& req, httplib::Response& res) {
                handle_generations(ctx, public_url, req, res);
              });
  server.Post("/v1/images/edits",
              [&ctx, &public_url](const httplib::Request& req, httplib::Response& res) {
                handle_edits(ctx, public_url, req, res);
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
