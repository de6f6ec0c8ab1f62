// Structured outputs: a JSON Schema becomes the GBNF grammar the answer must follow, through
// llama.cpp common's json_schema_to_grammar. The schema is checked first against the keywords
// that conversion honours exactly, so that nothing a client asks for is dropped on the way:
//   type, properties, required, additionalProperties, enum, const, anyOf, oneOf, items,
//   minItems, maxItems, minimum and maximum (integers), minLength, maxLength, pattern
//   (anchored with ^ and $), $ref (to #/$defs/NAME), $defs, and the annotations title,
//   description, default, examples, $schema, $id, $comment.
#pragma once

#include <string>

#include "base/error.h"
#include "nlohmann/json.hpp"

namespace allm {

// The largest minItems, maxItems, minLength or maxLength: the grammar spells repetitions out, and
// llama.cpp's grammar parser takes at most 2000 (a larger maximum it would silently drop).
constexpr int kMaxSchemaCount = 2000;

// The GBNF grammar of the JSON values `schema` admits. Anything unsupported is an
// invalid_request_error whose param is `param` followed by the keyword's path in the schema
// (e.g. text.format.schema.properties.age.multipleOf).
Error json_schema_grammar(const nlohmann::ordered_json& schema, const std::string& param,
                          std::string* gbnf);

// The GBNF grammar of any JSON object (response format json_object).
const std::string& json_object_grammar();

}  // namespace allm
