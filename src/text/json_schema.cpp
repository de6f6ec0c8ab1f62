#include "text/json_schema.h"

#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "json-schema-to-grammar.h"
#include "text/grammar.h"

namespace allm {

namespace {

using json = nlohmann::ordered_json;

const std::set<std::string> kAnnotations = {"title",   "description", "default", "examples",
                                            "$schema", "$id",         "$comment"};
const std::set<std::string> kTypes = {"object", "array",   "string", "integer",
                                      "number", "boolean", "null"};
// The keywords that constrain values of one type, and that type. The converter infers object,
// array and string from their keywords when `type` is absent, but not integer.
const std::map<std::string, std::string> kTypeKeywords = {
    {"properties", "object"}, {"required", "object"},  {"additionalProperties", "object"},
    {"items", "array"},       {"minItems", "array"},   {"maxItems", "array"},
    {"minLength", "string"},  {"maxLength", "string"}, {"pattern", "string"},
    {"minimum", "integer"},   {"maximum", "integer"}};
// Integers this far from zero are exact in a double.
constexpr double kMaxBound = 9007199254740992.0;

struct Pending {
  const json* schema;
  std::string path;
};

std::string type_of(const json& value) {
  if (value.is_null()) return "null";
  if (value.is_boolean()) return "boolean";
  if (value.is_number_integer()) return "integer";
  if (value.is_number()) return "number";
  if (value.is_string()) return "string";
  if (value.is_array()) return "array";
  return "object";
}

// Checks one schema object's keywords (not the schemas inside it, which go to `todo`).
class SchemaChecker {
 public:
  SchemaChecker(const json& root, std::string param) : root_(root), param_(std::move(param)) {}

  Error run() {
    std::vector<Pending> todo = {{&root_, param_}};
    while (!todo.empty()) {
      const Pending next = std::move(todo.back());
      todo.pop_back();
      if (Error e = check(*next.schema, next.path, &todo)) return e;
    }
    return {};
  }

 private:
  Error check(const json& schema, const std::string& path, std::vector<Pending>* todo) {
    if (!schema.is_object()) return request_error("a schema must be a JSON object", path);
    std::set<std::string> types;
    if (Error e = read_type(schema, path, &types)) return e;
    // The converter takes the first of $ref, anyOf/oneOf, const and enum it finds and ignores
    // the rest, so each must stand alone (const and enum beside a type they agree with).
    std::string exclusive;
    for (const std::string key : {"$ref", "anyOf", "oneOf", "const", "enum"}) {
      if (!schema.contains(key)) continue;
      if (!exclusive.empty()) {
        return request_error(
            "'" + key + "' cannot be combined with '" + exclusive + "' in one schema",
            path + "." + key);
      }
      exclusive = key;
    }
    for (const auto& [key, value] : schema.items()) {
      const std::string at = path + "." + key;
      if (kAnnotations.count(key) || key == "type" || key == exclusive) continue;
      if (key == "$defs") {
        if (Error e = check_defs(value, path, at, todo)) return e;
        continue;
      }
      const auto typed = kTypeKeywords.find(key);
      if (typed == kTypeKeywords.end()) {
        return request_error("unsupported JSON Schema keyword '" + quote_excerpt(key) + "'", at);
      }
      if (!exclusive.empty()) {
        return request_error(
            "'" + key + "' cannot be combined with '" + exclusive + "' in one schema", at);
      }
      if (Error e = check_type_fits(key, typed->second, types, schema, at)) return e;
      if (Error e = check_typed(schema, key, value, at, todo)) return e;
    }
    if (!exclusive.empty())
      return check_exclusive(schema, exclusive, types, path + "." + exclusive, todo);
    return {};
  }

  Error read_type(const json& schema, const std::string& path, std::set<std::string>* types) {
    if (!schema.contains("type")) return {};
    const json& type = schema["type"];
    const std::string at = path + ".type";
    const json list = type.is_array() ? type : json::array({type});
    if (list.empty()) return request_error("'type' must not be empty", at);
    for (const json& t : list) {
      if (!t.is_string() || !kTypes.count(t.get<std::string>())) {
        return request_error(
            "'type' must be one of object, array, string, integer, number, boolean, null (or an "
            "array of them)",
            at);
      }
      types->insert(t.get<std::string>());
    }
    return {};
  }

  // A keyword for values of one type needs that type among the schema's; without a type, the
  // converter infers object, array or string from the keywords, so they must agree on one.
  Error check_type_fits(const std::string& key, const std::string& type,
                        const std::set<std::string>& types, const json& schema,
                        const std::string& at) {
    if (!types.empty()) {
      if (types.count(type)) return {};
      if (type == "integer" && types.count("number")) {
        return request_error("'" + key + "' is supported on integers only (\"type\": \"integer\")",
                             at);
      }
      return request_error("'" + key + "' applies to " + type + " values, which this schema's " +
                               "'type' does not allow",
                           at);
    }
    if (type == "integer") {
      return request_error("'" + key + "' needs \"type\": \"integer\" beside it", at);
    }
    for (const auto& [other, other_type] : kTypeKeywords) {
      if (other_type != type && schema.contains(other)) {
        return request_error(
            "'" + key + "' and '" + other + "' apply to different types; give the schema a 'type'",
            at);
      }
    }
    return {};
  }

  Error check_typed(const json& schema, const std::string& key, const json& value,
                    const std::string& at, std::vector<Pending>* todo) {
    if (key == "properties") {
      if (!value.is_object()) return request_error("'properties' must be an object", at);
      for (const auto& [name, property] : value.items())
        todo->push_back({&property, at + "." + name});
      return {};
    }
    if (key == "required") return check_required(schema, value, at);
    if (key == "additionalProperties") {
      if (value.is_boolean()) return {};
      if (!value.is_object()) {
        return request_error("'additionalProperties' must be a boolean or a schema", at);
      }
      todo->push_back({&value, at});
      return {};
    }
    if (key == "items") {
      if (!value.is_object()) return request_error("'items' must be a schema (an object)", at);
      todo->push_back({&value, at});
      return {};
    }
    if (key == "pattern") return check_pattern(schema, value, at);
    if (key == "minimum" || key == "maximum") return check_bounds(schema, key, at);
    return check_count(schema, key, at);
  }

  Error check_required(const json& schema, const json& value, const std::string& at) {
    if (!value.is_array()) return request_error("'required' must be an array of strings", at);
    const json* properties = schema.contains("properties") ? &schema["properties"] : nullptr;
    for (size_t i = 0; i < value.size(); ++i) {
      const std::string item = at + "[" + std::to_string(i) + "]";
      if (!value[i].is_string()) return request_error("'required' must hold strings", item);
      // The converter requires only properties it generates.
      if (!properties || !properties->is_object() || !properties->contains(value[i])) {
        return request_error("required property '" + quote_excerpt(value[i].get<std::string>()) +
                                 "' is not in 'properties'",
                             item);
      }
    }
    return {};
  }

  // minItems/maxItems, minLength/maxLength: counts up to kMaxSchemaCount, the minimum no larger
  // than the maximum.
  Error check_count(const json& schema, const std::string& key, const std::string& at) {
    const json& value = schema[key];
    if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
        value.get<int64_t>() > kMaxSchemaCount) {
      return request_error(
          "'" + key + "' must be an integer from 0 to " + std::to_string(kMaxSchemaCount), at);
    }
    const std::string max_key = key == "minItems" ? "maxItems" : "maxLength";
    if ((key == "minItems" || key == "minLength") && schema.contains(max_key) &&
        schema[max_key].is_number_integer() &&
        value.get<int64_t>() > schema[max_key].get<int64_t>()) {
      return request_error("'" + key + "' is larger than '" + max_key + "'", at);
    }
    return {};
  }

  Error check_bounds(const json& schema, const std::string& key, const std::string& at) {
    const json& value = schema[key];
    if (!value.is_number() || !(std::fabs(value.get<double>()) <= kMaxBound)) {
      return request_error("'" + key + "' must be a number between -2^53 and 2^53", at);
    }
    if (key == "minimum" && schema.contains("maximum") && schema["maximum"].is_number() &&
        value.get<double>() > schema["maximum"].get<double>()) {
      return request_error("'minimum' is larger than 'maximum'", at);
    }
    return {};
  }

  // The converter turns a regular expression into grammar rules where it can and otherwise
  // accepts any string (the same grammar for every such pattern, only a warning on stderr), so
  // a pattern whose grammar is that fallback is refused here rather than dropped.
  Error check_pattern(const json& schema, const json& value, const std::string& at) {
    if (!value.is_string()) return request_error("'pattern' must be a string", at);
    const std::string pattern = value.get<std::string>();
    if (pattern.size() < 2 || pattern.front() != '^' || pattern.back() != '$') {
      return request_error("'pattern' must be anchored: start with ^ and end with $", at);
    }
    if (schema.contains("minLength") || schema.contains("maxLength")) {
      return request_error("'pattern' cannot be combined with minLength or maxLength", at);
    }
    static const std::string fallback = json_schema_to_grammar(
        common_json::parse(R"({"type":"string","pattern":"^(?=lookahead)$"})"), true);
    std::string with_pattern;
    try {
      with_pattern = json_schema_to_grammar(
          common_json::parse(json{{"type", "string"}, {"pattern", pattern}}.dump()), true);
    } catch (const std::exception& e) {
      return request_error("'pattern' is not supported: " + std::string(e.what()), at);
    }
    if (with_pattern == fallback) {
      return request_error(
          "'pattern' uses regular expression features that cannot be enforced (supported: "
          "literals, ., character classes, groups, |, and the quantifiers ? * + {m,n})",
          at);
    }
    return {};
  }

  Error check_defs(const json& value, const std::string& path, const std::string& at,
                   std::vector<Pending>* todo) {
    if (path != param_) return request_error("'$defs' is supported at the top level only", at);
    if (!value.is_object()) return request_error("'$defs' must be an object of schemas", at);
    for (const auto& [name, def] : value.items()) todo->push_back({&def, at + "." + name});
    return {};
  }

  Error check_exclusive(const json& schema, const std::string& key,
                        const std::set<std::string>& types, const std::string& at,
                        std::vector<Pending>* todo) {
    const json& value = schema[key];
    const bool typed_values = key == "const" || key == "enum";
    if (!typed_values && !types.empty()) {
      return request_error("'" + key + "' cannot be combined with 'type' in one schema", at);
    }
    if (key == "$ref") return check_ref(value, at);
    if (key == "anyOf" || key == "oneOf") {
      if (!value.is_array() || value.empty()) {
        return request_error("'" + key + "' must be a non-empty array of schemas", at);
      }
      for (size_t i = 0; i < value.size(); ++i) {
        todo->push_back({&value[i], at + "[" + std::to_string(i) + "]"});
      }
      return {};
    }
    if (key == "enum" && (!value.is_array() || value.empty())) {
      return request_error("'enum' must be a non-empty array", at);
    }
    const json values = key == "enum" ? value : json::array({value});
    for (const json& v : values) {
      const std::string type = type_of(v);
      if (!types.empty() && !types.count(type) && !(type == "integer" && types.count("number"))) {
        return request_error("'" + key + "' holds a " + type + " value, which this schema's " +
                                 "'type' does not allow",
                             at);
      }
    }
    return {};
  }

  Error check_ref(const json& value, const std::string& at) {
    const std::string prefix = "#/$defs/";
    if (!value.is_string() || value.get<std::string>().compare(0, prefix.size(), prefix) != 0) {
      return request_error("'$ref' must be a local reference of the form #/$defs/NAME", at);
    }
    const std::string name = value.get<std::string>().substr(prefix.size());
    if (!root_.contains("$defs") || !root_["$defs"].is_object() || !root_["$defs"].contains(name)) {
      return request_error("'$ref' names '" + quote_excerpt(name) + "', which '$defs' lacks", at);
    }
    return {};
  }

  const json& root_;
  const std::string param_;
};

}  // namespace

Error json_schema_grammar(const json& schema, const std::string& param, std::string* gbnf) {
  if (Error e = SchemaChecker(schema, param).run()) return e;
  try {
    *gbnf = json_schema_to_grammar(common_json::parse(schema.dump()), true);
  } catch (const std::exception& e) {
    return request_error(std::string("the schema cannot be turned into a grammar: ") + e.what(),
                         param);
  }
  // The grammar engine has limits of its own: repetitions of repetitions (maxItems of items with
  // maxLength multiply), and no rule that refers to itself before reading any text.
  Error grammar_error;
  GrammarConstraint constraint;
  constraint.gbnf = *gbnf;
  if (!TokenGrammar::create(constraint, nullptr, &grammar_error)) {
    return request_error(
        "the schema's grammar is beyond the grammar engine: too many repetitions (lower maxItems, "
        "maxLength, minItems or minLength) or a $ref that refers back to itself before any value",
        param);
  }
  return {};
}

const std::string& json_object_grammar() {
  static const std::string gbnf =
      json_schema_to_grammar(common_json::parse(R"({"type":"object"})"), true);
  return gbnf;
}

}  // namespace allm
