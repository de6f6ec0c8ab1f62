// What is typed at `allm run`'s prompt, line by line: messages (one line, or several between
// """ marks), and the chat's commands.
#pragma once

#include <string>
#include <vector>

namespace allm {

// What can be typed at the prompt, for /? and allm run --help.
constexpr const char* kChatCommandsHelp =
    "  \"\"\"          start a message of several lines; a line ending in \"\"\" ends it\n"
    "  /clear       forget the conversation so far\n"
    "  /bye         end the chat (also Ctrl-D)\n"
    "  /?           this help\n"
    "  Ctrl-C       stop the answer being written; twice at the prompt ends the chat\n";

class ChatInput {
 public:
  enum class Kind {
    NOTHING,  // an empty line, or a line inside a """ block: read on
    MESSAGE,  // `text` is a message to send
    BYE,      // /bye
    CLEAR,    // /clear
    HELP,     // /? or /help
    UNKNOWN,  // another /command, in `text`
  };
  struct Entry {
    Kind kind = Kind::NOTHING;
    std::string text;
  };

  // One line as typed, without its line end.
  Entry add_line(const std::string& line);
  // Whether a """ block is open (the prompt shows that more is expected).
  bool in_block() const { return in_block_; }
  // Drops a block being typed (Ctrl-C at the prompt).
  void reset();

 private:
  Entry finish_block();

  bool in_block_ = false;
  std::vector<std::string> block_;
};

// Takes the complete lines (without "\n" or "\r\n") from the front of `pending`, leaving an
// unfinished last line there.
std::vector<std::string> take_lines(std::string* pending);

}  // namespace allm
