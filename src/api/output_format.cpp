#include "api/output_format.h"

#include <cctype>
#include <functional>
#include <set>

#include "text/json_schema.h"

namespace allm {

// The first member of `object` not in `known` (null counts as absent), refused so that no field
// is silently dropped.
Error refuse_unknown_fields(const json& object, const std::set<std::string>& known,
                            const std::string& param) {
  for (const auto& [key, value] : object.items()) {
    if (!value.is_null() && !known.count(key)) {
      return request_error("unknown parameter '" + quote_excerpt(key) + "'", param + "." + key,
                           "unknown_parameter");
    }
  }
  return {};
}

bool valid_api_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  }
  return true;
}

namespace {

const std::set<std::string> kSpecFields = {"name", "schema", "description", "strict"};

// {name, schema, description, strict} at `param`; the echo gets them as the response shows them.
Error read_schema_spec(const json& spec, const std::string& param, OutputFormat* out) {
  const std::string name = text_member(spec, "name", "");
  if (!spec.contains("name") || !spec["name"].is_string() || !valid_api_name(name)) {
    return request_error("'name' must be 1 to 64 letters, digits, underscores or dashes",
                         param + ".name");
  }
  if (!spec.contains("schema") || !spec["schema"].is_object()) {
    return request_error("'schema' must be a JSON Schema object", param + ".schema");
  }
  if (spec.contains("description") && !spec["description"].is_string() &&
      !spec["description"].is_null()) {
    return request_error("'description' must be a string", param + ".description");
  }
  if (spec.contains("strict") && !spec["strict"].is_boolean() && !spec["strict"].is_null()) {
    return request_error("'strict' must be a boolean", param + ".strict");
  }
  // Strict or not, the answer follows the schema: it is the grammar of the sampling.
  if (Error e = json_schema_grammar(spec["schema"], param + ".schema", &out->grammar.gbnf)) {
    return e;
  }
  out->schema = spec["schema"].dump();
  out->echo = {
      {"type", "json_schema"},
      {"name", name},
      {"description", spec.value("description", json(nullptr))},
      {"schema", spec["schema"]},
      {"strict", spec.contains("strict") && spec["strict"].is_boolean() ? spec["strict"].get<bool>()
                                                                        : false}};
  return {};
}

// The format object's type: text, json_object, or json_schema (whose spec `read_spec` reads).
Error read_format(const json& format, const std::string& param, OutputFormat* out,
                  const std::function<Error(OutputFormat*)>& read_spec) {
  if (!format.is_object()) return request_error("'" + param + "' must be an object", param);
  const std::string type = text_member(format, "type", "");
  if (type == "text" || type == "json_object") {
    if (Error e = refuse_unknown_fields(format, {"type"}, param)) return e;
    out->echo = {{"type", type}};
    if (type == "json_object") {
      out->grammar.gbnf = json_object_grammar();
      out->schema = R"({"type":"object"})";
    }
    return {};
  }
  if (type == "json_schema") return read_spec(out);
  return request_error(
      "'type' must be one of text, json_object, json_schema, got '" + quote_excerpt(type) + "'",
      param + ".type");
}

}  // namespace

Error read_text_format(const json& body, OutputFormat* out) {
  if (!body.contains("text") || body["text"].is_null()) return {};
  const json& text = body["text"];
  if (!text.is_object()) return request_error("'text' must be an object", "text");
  if (text.contains("verbosity") && !text["verbosity"].is_null()) {
    return unsupported_error("verbosity settings are not offered", "text.verbosity");
  }
  if (Error e = refuse_unknown_fields(text, {"format", "verbosity"}, "text")) return e;
  if (!text.contains("format") || text["format"].is_null()) return {};
  const json& format = text["format"];
  return read_format(format, "text.format", out, [&](OutputFormat* o) {
    std::set<std::string> known = kSpecFields;
    known.insert("type");
    if (Error e = refuse_unknown_fields(format, known, "text.format")) return e;
    return read_schema_spec(format, "text.format", o);
  });
}

Error read_response_format(const json& body, OutputFormat* out) {
  if (!body.contains("response_format") || body["response_format"].is_null()) return {};
  const json& format = body["response_format"];
  return read_format(format, "response_format", out, [&](OutputFormat* o) {
    if (Error e = refuse_unknown_fields(format, {"type", "json_schema"}, "response_format"))
      return e;
    if (!format.contains("json_schema") || !format["json_schema"].is_object()) {
      return request_error("'json_schema' must be an object with 'name' and 'schema'",
                           "response_format.json_schema");
    }
    const json& spec = format["json_schema"];
    if (Error e = refuse_unknown_fields(spec, kSpecFields, "response_format.json_schema")) return e;
    return read_schema_spec(spec, "response_format.json_schema", o);
  });
}

}  // namespace allm
