#include "api/logprobs.h"

#include "text/utf8.h"

namespace allm {

namespace {

json bytes_json(const std::string& bytes) {
  json out = json::array();
  for (unsigned char c : bytes) out.push_back(static_cast<int>(c));
  return out;
}

}  // namespace

json logprob_entry(const TokenLogprob& logprob) {
  json top = json::array();
  for (const auto& [bytes, value] : logprob.top) {
    top.push_back(
        {{"token", sanitize_utf8(bytes)}, {"logprob", value}, {"bytes", bytes_json(bytes)}});
  }
  return {{"token", sanitize_utf8(logprob.bytes)},
          {"logprob", logprob.logprob},
          {"bytes", bytes_json(logprob.bytes)},
          {"top_logprobs", top}};
}

void append_logprob_entries(const std::vector<TokenLogprob>& logprobs, json* entries) {
  for (const TokenLogprob& logprob : logprobs) entries->push_back(logprob_entry(logprob));
}

}  // namespace allm
