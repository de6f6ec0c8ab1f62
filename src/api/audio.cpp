// POST /v1/audio/transcriptions and /v1/audio/translations (multipart/form-data, as OpenAI).
#include <cstdlib>
#include <set>

#include "api/audio_formats.h"
#include "api/form_data.h"
#include "api/http_util.h"
#include "api/model_advice.h"
#include "api/request_parsing.h"
#include "api/routes.h"
#include "core/audio_manager.h"

namespace allm {

namespace {

struct AudioCall {
  AudioRequest request;
  TranscriptFormat format = TranscriptFormat::JSON;
  bool segments = true;
  bool words = false;
  const std::string* file = nullptr;
};

// Reads the text fields of a multipart form, keeping the first problem.
class FormReader {
 public:
  explicit FormReader(const httplib::MultipartFormData& form) : form_(form) {}

  std::optional<std::string> text(const char* name, bool required = false) {
    const size_t count = form_.get_field_count(name);
    if (count == 0) {
      if (required) fail(std::string("missing required field '") + name + "'", name);
      return std::nullopt;
    }
    if (count > 1) {
      fail(std::string("the field '") + name + "' is given more than once", name);
      return std::nullopt;
    }
    return form_.get_field(name);
  }

  std::optional<double> number(const char* name, double lo, double hi) {
    auto value = text(name);
    if (!value) return std::nullopt;
    char* end = nullptr;
    const double v = std::strtod(value->c_str(), &end);
    if (value->empty() || *end != '\0' || !(v >= lo && v <= hi)) {
      fail(std::string("'") + name + "' must be a number between " + json(lo).dump() + " and " +
               json(hi).dump() + ", got '" + value->substr(0, 32) + "'",
           name);
      return std::nullopt;
    }
    return v;
  }

  void fail(const std::string& message, const std::string& param) {
    if (error.ok()) error = request_error(message, param);
  }

  Error error;

 private:
  const httplib::MultipartFormData& form_;
};

Error read_granularities(const httplib::MultipartFormData& form, AudioCall* call) {
  std::vector<std::string> values = form.get_fields("timestamp_granularities[]");
  for (const std::string& v : form.get_fields("timestamp_granularities")) values.push_back(v);
  if (values.empty()) return {};
  if (call->format != TranscriptFormat::VERBOSE_JSON) {
    return request_error("timestamp_granularities needs response_format 'verbose_json'",
                         "timestamp_granularities");
  }
  call->segments = false;
  for (const std::string& v : values) {
    if (v == "segment") {
      call->segments = true;
    } else if (v == "word") {
      call->words = true;
    } else {
      return request_error("timestamp_granularities entries must be 'segment' or 'word', got '" +
                               v.substr(0, 32) + "'",
                           "timestamp_granularities");
    }
  }
  return {};
}

Error read_call(const httplib::Request& req, AudioTask task, AudioCall* call) {
  if (!req.is_multipart_form_data()) {
    return request_error("the request must be multipart/form-data with 'file' and 'model'", "",
                         "invalid_request");
  }
  if (Error e = check_form_field_sizes(req.form)) return e;
  FormReader form(req.form);
  auto model = form.text("model", true);
  auto language = form.text("language");
  auto prompt = form.text("prompt");
  auto format = form.text("response_format");
  auto temperature = form.number("temperature", 0.0, 1.0);
  auto temperature_inc = form.number("temperature_inc", 0.0, 1.0);
  auto stream = form.text("stream");
  if (language && (language->size() < 2 || language->size() > 3)) {
    form.fail("'language' must be an ISO-639-1 code such as 'en', got '" + *language + "'",
              "language");
  }
  if (format && !parse_transcript_format(*format)) {
    form.fail("'response_format' must be one of json, text, srt, verbose_json, vtt; got '" +
                  format->substr(0, 32) + "'",
              "response_format");
  }
  if (stream && *stream != "false")
    form.fail("streaming transcriptions are not supported", "stream");
  if (form.error) return form.error;
  Error error;
  call->file = find_form_file(req.form, "file", "the audio to transcribe", true, &error);
  if (!call->file) return error;
  call->format = format ? *parse_transcript_format(*format) : TranscriptFormat::JSON;
  if ((error = read_granularities(req.form, call))) return error;

  AudioRequest& request = call->request;
  request.model = *model;
  request.task = task;
  request.language = language.value_or("");
  request.prompt = prompt.value_or("");
  request.temperature = static_cast<float>(temperature.value_or(0.0));
  request.temperature_increment =
      static_cast<float>(temperature_inc.value_or(kWhisperTemperatureIncrement));
  request.word_timestamps = call->words;
  return {};
}

void handle_audio(ApiContext& ctx, AudioTask task, const httplib::Request& req,
                  httplib::Response& res) {
  AudioCall call;
  if (Error e = read_call(req, task, &call)) {
    send_error(res, e);
    return;
  }
  call.request.client_gone = [&req] { return req.is_connection_closed(); };
  Transcript transcript;
  if (Error e = ctx.audio.transcribe(call.request, *call.file, &transcript)) {
    send_error(res, with_endpoint_advice(e, ctx.registry, call.request.model, Modality::AUDIO));
    return;
  }
  const TranscriptView view{transcript, task == AudioTask::TRANSLATE ? "translate" : "transcribe",
                            call.segments, call.words};
  FormattedTranscript out = format_transcript(view, call.format);
  res.status = 200;
  res.set_content(std::move(out.body), out.content_type);
}

}  // namespace

Error check_audio_request(const httplib::Request& req) {
  AudioCall call;
  return read_call(req, AudioTask::TRANSCRIBE, &call);
}

void register_audio_routes(httplib::Server& server, ApiContext& ctx) {
  server.Post("/v1/audio/transcriptions",
              [&ctx](const httplib::Request& req, httplib::Response& res) {
                handle_audio(ctx, AudioTask::TRANSCRIBE, req, res);
              });
  server.Post("/v1/audio/translations",
              [&ctx](const httplib::Request& req, httplib::Response& res) {
                handle_audio(ctx, AudioTask::TRANSLATE, req, res);
              });
}

}  // namespace allm
