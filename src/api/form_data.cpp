#include "api/form_data.h"

namespace allm {

Error check_form_field_sizes(const httplib::MultipartFormData& form) {
  for (const auto& [name, field] : form.fields) {
    if (field.content.size() > kMaxFormFieldBytes) {
      return request_error("the field '" + name.substr(0, 64) + "' is larger than " +
                               std::to_string(kMaxFormFieldBytes) + " bytes",
                           name.substr(0, 64));
    }
  }
  return {};
}

const std::string* find_form_file(const httplib::MultipartFormData& form, const std::string& name,
                                  const std::string& what, bool required, Error* error) {
  const std::string* found = nullptr;
  size_t count = 0;
  for (const std::string& key : {name, name + "[]"}) {
    count += form.get_file_count(key) + form.get_field_count(key);
    if (auto it = form.files.find(key); it != form.files.end()) found = &it->second.content;
    if (auto it = form.fields.find(key); it != form.fields.end()) found = &it->second.content;
  }
  if (count > 1) {
    *error = request_error("send exactly one '" + name + "'", name);
    return nullptr;
  }
  if (!found && required) {
    *error = request_error("missing required field '" + name + "' (" + what + ")", name);
  }
  return found;
}

}  // namespace allm
