// Server-sent events as they arrive in pieces: the data of each complete event.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace allm {

class SseReader {
 public:
  // Takes the next bytes of the stream; returns the data of the events they complete (a data
  // field's lines joined by '\n'). Comments, other fields and events without data are skipped;
  // lines may end in "\n" or "\r\n".
  std::vector<std::string> feed(std::string_view bytes);

 private:
  std::string line_;  // the line not yet ended
  std::string data_;  // the event's data so far
  bool has_data_ = false;
};

}  // namespace allm
