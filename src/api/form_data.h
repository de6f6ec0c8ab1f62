// Shared pieces of the multipart/form-data endpoints (audio transcriptions, image edits).
#pragma once

#include <string>

#include "api/http_util.h"

namespace allm {

// Any text field a form may carry; prompts are far shorter.
constexpr size_t kMaxFormFieldBytes = 64 * 1024;

// A 400 naming the first text field larger than kMaxFormFieldBytes.
Error check_form_field_sizes(const httplib::MultipartFormData& form);

// The one upload named `name` (or `name[]`, as SDKs send a list): a file part, or a plain field
// of that name for clients that send no filename. Null with *error set when it is missing
// (`required`) or sent more than once; `what` says what the upload is, for the message.
const std::string* find_form_file(const httplib::MultipartFormData& form, const std::string& name,
                                  const std::string& what, bool required, Error* error);

}  // namespace allm
