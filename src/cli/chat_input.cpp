#include "cli/chat_input.h"

namespace allm {

namespace {

constexpr const char* kBlockMark = "\"\"\"";

bool ends_with_mark(const std::string& text) {
  return text.size() >= 3 && text.compare(text.size() - 3, 3, kBlockMark) == 0;
}

bool blank(const std::string& text) {
  return text.find_first_not_of(" \t") == std::string::npos;
}

}  // namespace

ChatInput::Entry ChatInput::add_line(const std::string& line) {
  if (in_block_) {
    if (!ends_with_mark(line)) {
      block_.push_back(line);
      return {};
    }
    const std::string last = line.substr(0, line.size() - 3);
    if (!last.empty()) block_.push_back(last);
    return finish_block();
  }
  if (line.rfind(kBlockMark, 0) == 0) {
    const std::string first = line.substr(3);
    if (ends_with_mark(first)) {  // """one line"""
      block_ = {first.substr(0, first.size() - 3)};
      return finish_block();
    }
    in_block_ = true;
    block_.clear();
    if (!first.empty()) block_.push_back(first);
    return {};
  }
  if (blank(line)) return {};
  if (line[0] == '/') {
    const std::string command = line.substr(0, line.find_first_of(" \t"));
    if (command == "/bye") return {Kind::BYE, ""};
    if (command == "/clear") return {Kind::CLEAR, ""};
    if (command == "/?" || command == "/help") return {Kind::HELP, ""};
    return {Kind::UNKNOWN, command};
  }
  return {Kind::MESSAGE, line};
}

ChatInput::Entry ChatInput::finish_block() {
  std::string text;
  for (size_t i = 0; i < block_.size(); ++i) text += (i ? "\n" : "") + block_[i];
  reset();
  if (blank(text)) return {};
  return {Kind::MESSAGE, text};
}

void ChatInput::reset() {
  in_block_ = false;
  block_.clear();
}

std::vector<std::string> take_lines(std::string* pending) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end; (end = pending->find('\n', start)) != std::string::npos; start = end + 1) {
    std::string line = pending->substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  pending->erase(0, start);
  return lines;
}

}  // namespace allm
