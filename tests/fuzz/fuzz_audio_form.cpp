// POST /v1/audio/transcriptions: a multipart body goes through httplib's own multipart parser
// (as the server does) and then our form reading; every form gives a parsed request or a 400.
// httplib keeps its multipart parser in its implementation file, so that file is built here.
#include "api/request_parsing.h"
#include "fuzz_util.h"
#include "httplib.cpp"

namespace {

constexpr const char* kBoundary = "allmfuzz";

// Fills req.form from `body` the way httplib::Server::read_content does.
bool parse_form(const std::string& body, httplib::Request* req) {
  httplib::detail::FormDataParser parser;
  parser.set_boundary(kBoundary);
  httplib::FormFields::iterator field;
  httplib::FormFiles::iterator file;
  bool is_text = false;
  const bool ok = parser.parse(
      body.data(), body.size(),
      [&](const httplib::FormData& part) {
        if (part.filename.empty()) {
          field = req->form.fields.emplace(
              part.name, httplib::FormField{part.name, part.content, part.headers});
          is_text = true;
        } else {
          file = req->form.files.emplace(part.name, part);
          is_text = false;
        }
        return true;
      },
      [&](const char* buf, size_t n) {
        (is_text ? field->second.content : file->second.content).append(buf, n);
        return true;
      });
  return ok && parser.is_valid();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  httplib::Request req;
  req.set_header("Content-Type", std::string("multipart/form-data; boundary=") + kBoundary);
  if (!parse_form(std::string(reinterpret_cast<const char*>(data), size), &req)) return 0;
  const allm::Error error = allm::check_audio_request(req);
  if (error && allm::http_status(error) != 400) fuzz::fail("a request problem that is not a 400");
  return 0;
}
