// Structured outputs: the format a request asks the answer to take (Responses `text.format`,
// Chat Completions `response_format`), read into the grammar the sampler follows.
#pragma once

#include <set>
#include <string>

#include "api/http_util.h"
#include "text/generation.h"

namespace allm {

// The first member of `object` (at `param`) not in `known`, refused as an unknown parameter;
// null counts as absent.
Error refuse_unknown_fields(const json& object, const std::set<std::string>& known,
                            const std::string& param);

// Whether `name` may name a schema or a function: 1 to 64 letters, digits, '_' or '-'.
bool valid_api_name(const std::string& name);

struct OutputFormat {
  json echo = {{"type", "text"}};  // the format as the response object shows it
  GrammarConstraint grammar;       // empty for plain text
  std::string schema;              // the JSON Schema it follows, as text; empty for plain text
};

// Responses: `text` {format: {type: "text"} | {type: "json_object"} |
// {type: "json_schema", name, schema, description, strict}}.
Error read_text_format(const json& body, OutputFormat* out);

// Chat Completions: `response_format` {type: "text"} | {type: "json_object"} |
// {type: "json_schema", json_schema: {name, schema, description, strict}}.
Error read_response_format(const json& body, OutputFormat* out);

}  // namespace allm
