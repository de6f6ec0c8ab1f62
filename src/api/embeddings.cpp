// POST /v1/embeddings: OpenAI's embeddings API on the text models.
#include <cstring>

#include "api/access_log.h"
#include "api/http_util.h"
#include "api/model_advice.h"
#include "api/request_parsing.h"
#include "api/routes.h"
#include "core/text_manager.h"

namespace allm {

namespace {

// OpenAI's own limits: 2048 inputs per request, a user id of 256 bytes at most here.
constexpr size_t kMaxInputs = 2048;
constexpr size_t kMaxEndUserBytes = 256;

struct EmbeddingCall {
  EmbeddingRequest request;
  bool base64 = false;
};

Error read_token_ids(const json& ids, const std::string& param, EmbeddingInput* input) {
  input->param = param;
  if (ids.empty()) return request_error("'" + param + "' must not be empty", param);
  input->is_tokens = true;
  for (const json& id : ids) {
    if (!id.is_number_integer()) {
      return request_error("'" + param + "' must hold integer token ids", param);
    }
    const int64_t value = id.get<int64_t>();
    if (value < 0 || value > INT32_MAX) {
      return request_error(
          "token id " + std::to_string(value) + " in '" + param + "' is out of range", param);
    }
    input->tokens.push_back(static_cast<Token>(value));
  }
  return {};
}

Error read_text(const json& text, const std::string& param, EmbeddingInput* input) {
  if (text.get_ref<const std::string&>().empty()) {
    return request_error("'" + param + "' must not be an empty string", param);
  }
  input->param = param;
  input->text = text.get<std::string>();
  return {};
}

// `input`: a string, an array of strings, an array of token ids, or an array of such arrays.
Error read_inputs(const json& input, std::vector<EmbeddingInput>* out) {
  const std::string kMust =
      "'input' must be a string, an array of strings, an array of token ids or an array of "
      "arrays of token ids";
  if (input.is_string()) return read_text(input, "input", &out->emplace_back());
  if (!input.is_array()) return request_error(kMust, "input");
  if (input.empty()) return request_error("'input' must not be empty", "input");
  if (input.front().is_number()) return read_token_ids(input, "input", &out->emplace_back());
  if (input.size() > kMaxInputs) {
    return request_error("'input' may hold at most " + std::to_string(kMaxInputs) + " inputs",
                         "input");
  }
  const bool strings = input.front().is_string();
  for (size_t i = 0; i < input.size(); ++i) {
    const std::string param = "input[" + std::to_string(i) + "]";
    const json& item = input[i];
    if (strings && item.is_string()) {
      if (Error e = read_text(item, param, &out->emplace_back())) return e;
    } else if (!strings && item.is_array()) {
      if (Error e = read_token_ids(item, param, &out->emplace_back())) return e;
    } else {
      return request_error(kMust + " (all items of one kind)", param);
    }
  }
  return {};
}

Error read_call(const json& body, EmbeddingCall* call) {
  for (const auto& [key, value] : body.items()) {
    if (key != "model" && key != "input" && key != "encoding_format" && key != "dimensions" &&
        key != "user") {
      return request_error("unknown parameter '" + quote_excerpt(key) + "'", key,
                           "unknown_parameter");
    }
  }
  ParamReader params(body);
  call->request.model = params.string("model", true).value_or("");
  const std::string format = params.string("encoding_format").value_or("float");
  if (!params.error && format != "float" && format != "base64") {
    params.fail("'encoding_format' must be 'float' or 'base64'", "encoding_format");
  }
  call->base64 = format == "base64";
  call->request.dimensions = static_cast<int>(params.integer("dimensions", 1, 1 << 20).value_or(0));
  const std::string user = params.string("user").value_or("");
  if (!params.error && user.size() > kMaxEndUserBytes) {
    params.fail("'user' may be at most " + std::to_string(kMaxEndUserBytes) + " bytes long",
                "user");
  }
  if (!params.error && !params.has("input"))
    params.fail("missing required parameter 'input'", "input");
  if (params.error) return params.error;
  if (Error e = read_inputs(body["input"], &call->request.inputs)) return e;
  current_access().end_user = user;
  return {};
}

// Float32 little-endian bytes, base64-encoded, as OpenAI's encoding_format "base64" gives them.
std::string base64_floats(const std::vector<float>& vector) {
  static_assert(sizeof(float) == 4, "float32");
  std::string bytes(vector.size() * sizeof(float), '\0');
  for (size_t i = 0; i < vector.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &vector[i], sizeof bits);
    for (int b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<char>((bits >> (8 * b)) & 0xff);
  }
  return base64(bytes);
}

json response_body(const EmbeddingCall& call, const EmbeddingResult& result) {
  json data = json::array();
  for (size_t i = 0; i < result.vectors.size(); ++i) {
    json item = {{"object", "embedding"}, {"index", i}};
    item["embedding"] =
        call.base64 ? json(base64_floats(result.vectors[i])) : json(result.vectors[i]);
    data.push_back(std::move(item));
  }
  return {
      {"object", "list"},
      {"data", std::move(data)},
      {"model", call.request.model},
      {"usage", {{"prompt_tokens", result.prompt_tokens}, {"total_tokens", result.prompt_tokens}}}};
}

void create_embeddings(ApiContext& ctx, const httplib::Request& req, httplib::Response& res) {
  json body;
  Error error;
  if (!parse_json_body(req, &body, &error)) return send_error(res, error);
  EmbeddingCall call;
  if ((error = read_call(body, &call))) return send_error(res, error);
  EmbeddingResult result;
  if ((error = ctx.text.embed(call.request, &result))) {
    return send_error(
        res, with_endpoint_advice(error, ctx.registry, call.request.model, Modality::TEXT));
  }
  send_json(res, response_body(call, result));
}

}  // namespace

Error check_embeddings_request(const json& body) {
  EmbeddingCall call;
  return read_call(body, &call);
}

void register_embeddings_routes(httplib::Server& server, ApiContext& ctx) {
  server.Post("/v1/embeddings", [&ctx](const httplib::Request& req, httplib::Response& res) {
    create_embeddings(ctx, req, res);
  });
}

}  // namespace allm
