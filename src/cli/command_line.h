// What every allm command does first with its command line.
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include "cli/commands.h"

namespace allm {

// Parses a command's options with `parse` (fills *options; false with a problem; *show_help at
// --help). Returns the exit status when the command is done already: a bad command line (the
// problem on stderr, kExitUsage) or --help (`help()` on stdout, kExitOk); nullopt to run it.
template <typename Options>
std::optional<int> parse_command_line(const char* command, int argc, char** argv,
                                      bool (*parse)(int, char**, Options*, std::string*, bool*),
                                      std::string (*help)(), Options* options) {
  std::string problem;
  bool show_help = false;
  if (!parse(argc, argv, options, &problem, &show_help)) {
    std::fprintf(stderr, "allm %s: %s\n", command, problem.c_str());
    return kExitUsage;
  }
  if (show_help) {
    std::fputs(help().c_str(), stdout);
    return kExitOk;
  }
  return std::nullopt;
}

}  // namespace allm
